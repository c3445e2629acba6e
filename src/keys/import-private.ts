/**
 * Turns a decoded ADD_IDENTITY key body into a HeldKey: checks that the private and public
 * halves belong together (as OpenSSH's sshkey_private_deserialize does) and builds the
 * node:crypto KeyObject from DER written into a secret buffer, wiped right after the import
 * (private-der.ts, secret-bytes.ts): no secret ever becomes a string or a BigInt. The body
 * itself is not wiped here: it belongs to the caller (the server wipes its request frame).
 * Errors never quote key material.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { InvalidKeyError, ProtocolError, UnsupportedKeyError } from '../errors';
import { isCertificateType, keyAlgorithm, plainAlgorithm } from '../protocol/algorithms';
import type { Curve, KeyAlgorithm } from '../protocol/algorithms';
import { publicBlobOfBody } from '../protocol/private-key';
import type { PrivateKeyBody } from '../protocol/private-key';
import { parsePublicKeyBlob } from '../protocol/public-key';
import type { Certificate, EcdsaPublicKey, PlainPublicKey, RsaPublicKey } from '../protocol/public-key';
import { SshReader, mpintToUnsigned } from '../protocol/wire';
import { certificateSignatureValid } from './certificate';
import type { HeldKey } from './held-key';
import { ecSec1, ed25519Pkcs8, rsaPkcs1 } from './private-der';
import { checkRsaSecrets, compareMagnitudes, crtExponent, wipe } from './secret-bytes';

/** OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE: smaller RSA keys are refused. */
export const RSA_MIN_BITS = 1024;
/** OpenSSH's SSHBUF_MAX_BIGNUM in bits. */
export const RSA_MAX_BITS = 16384;

/** The key type name at the start of a blob ('' when unreadable). */
function parseKeyType(blob: Buffer): string {
  try {
    return new SshReader(blob).text();
  } catch {
    return '';
  }
}

/** Parses the certificate from a private copy: the request buffer it came in is wiped later. */
function certificateOf(body: { type: string; certificate: Buffer }): Certificate & { blob: Buffer } {
  const blob = Buffer.from(body.certificate);
  let parsed;
  try {
    parsed = parsePublicKeyBlob(blob);
  } catch (err) {
    throw new InvalidKeyError('malformed certificate', { cause: err });
  }
  if (parsed.kind !== 'certificate' || parsed.type !== body.type) {
    throw new InvalidKeyError('certificate blob does not match the key type');
  }
  // As OpenSSH's cert_parse: the CA must be a plain key and its signature must verify.
  if (isCertificateType(parseKeyType(parsed.signatureKey))) throw new InvalidKeyError('certificate signed by a certificate');
  if (!certificateSignatureValid(parsed)) throw new InvalidKeyError('certificate signature does not verify');
  return { ...parsed, blob };
}

/** OpenSSL's key from DER it parses; the DER buffer is wiped whatever happens. */
function importDer(der: Buffer, type: 'pkcs8' | 'sec1' | 'pkcs1'): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type });
  } finally {
    der.fill(0);
  }
}

/** The public key OpenSSL derives from a private KeyObject, as SubjectPublicKeyInfo DER. */
function derivedSpki(key: KeyObject): Buffer {
  return createPublicKey(key).export({ format: 'der', type: 'spki' });
}

function ed25519Key(publicKey: Buffer, secret: Buffer): KeyObject {
  if (publicKey.length !== 32) throw new InvalidKeyError('ed25519 public key is not 32 bytes');
  if (secret.length !== 64) throw new InvalidKeyError('ed25519 secret is not 64 bytes');
  if (!secret.subarray(32).equals(publicKey)) throw new InvalidKeyError('ed25519 secret does not match its public key');
  const key = importDer(ed25519Pkcs8(secret.subarray(0, 32)), 'pkcs8');
  // OpenSSL does not check the public key against the seed: derive it and compare (the
  // SPKI's last 32 bytes are the key, RFC 8410 §4).
  if (!derivedSpki(key).subarray(-32).equals(publicKey)) throw new InvalidKeyError('ed25519 seed does not match its public key');
  return key;
}

/** An unsigned big-endian magnitude as a BigInt: for the public n and e only. */
function publicBigInt(raw: Uint8Array): bigint {
  const mag = mpintToUnsigned(raw);
  return mag.length === 0 ? 0n : BigInt('0x' + mag.toString('hex'));
}

function rsaKey(pub: RsaPublicKey, dRaw: Buffer, iqmpRaw: Buffer, pRaw: Buffer, qRaw: Buffer): { key: KeyObject; bits: number } {
  const n = mpintToUnsigned(pub.n);
  const e = publicBigInt(pub.e);
  const bits = n.length === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]));
  if (bits < RSA_MIN_BITS) throw new UnsupportedKeyError(`RSA key of ${bits} bits is below the ${RSA_MIN_BITS}-bit minimum`);
  if (bits > RSA_MAX_BITS) throw new UnsupportedKeyError(`RSA key of ${bits} bits is above the ${RSA_MAX_BITS}-bit maximum`);
  const d = mpintToUnsigned(dRaw);
  const p = mpintToUnsigned(pRaw);
  const q = mpintToUnsigned(qRaw);
  const qi = mpintToUnsigned(iqmpRaw);
  const two = Uint8Array.of(2);
  if (e < 3n || e % 2n === 0n) throw new InvalidKeyError('RSA public exponent is invalid');
  if (compareMagnitudes(p, two) < 0 || compareMagnitudes(q, two) < 0)
    throw new InvalidKeyError('RSA primes do not match the modulus');
  const { primesMatch, crtValid } = checkRsaSecrets(n, p, q, qi);
  if (!primesMatch || (p[p.length - 1] & 1) === 0 || (q[q.length - 1] & 1) === 0)
    throw new InvalidKeyError('RSA primes do not match the modulus');
  if (compareMagnitudes(d, two) < 0 || compareMagnitudes(d, n) >= 0)
    throw new InvalidKeyError('RSA private exponent is out of range');
  if (!crtValid) throw new InvalidKeyError('RSA CRT coefficient is invalid');
  const dp = crtExponent(d, p);
  const dq = crtExponent(d, q);
  try {
    return { key: importDer(rsaPkcs1({ n, e: mpintToUnsigned(pub.e), d, p, q, dp, dq, qi }), 'pkcs1'), bits };
  } finally {
    wipe(dp, dq);
  }
}

function ecdsaKey(pub: EcdsaPublicKey, dRaw: Buffer): KeyObject {
  const curve = plainAlgorithm(pub.type)!.curve!;
  if (pub.curve !== curve.sshName) throw new InvalidKeyError('ECDSA curve name does not match the key type');
  const { point } = pub;
  if (point.length !== 1 + 2 * curve.fieldBytes || point[0] !== 0x04) {
    throw new InvalidKeyError('ECDSA public point is not an uncompressed point of the curve');
  }
  const d = mpintToUnsigned(dRaw);
  if (d.length > curve.fieldBytes) throw new InvalidKeyError('ECDSA private scalar too long');
  if (d.length === 0) throw new InvalidKeyError('ECDSA private scalar is invalid');
  let key: KeyObject;
  try {
    key = importDer(ecSec1(curve, d), 'sec1');
  } catch (err) {
    throw new InvalidKeyError('ECDSA private scalar is invalid', { cause: err });
  }
  // The SEC1 DER carried no public key, so OpenSSL computed d·G: it must be the client's point
  // (the SPKI ends with the uncompressed point, RFC 5480 §2.2).
  if (!derivedSpki(key).subarray(-point.length).equals(point))
    throw new InvalidKeyError('ECDSA private scalar does not match its public point');
  return key;
}

function expectKind<K extends PlainPublicKey['kind']>(cert: Certificate, kind: K): Extract<PlainPublicKey, { kind: K }> {
  if (cert.key.kind !== kind) throw new InvalidKeyError('certificate key type does not match');
  return cert.key as Extract<PlainPublicKey, { kind: K }>;
}

/**
 * Builds the HeldKey for a key body. Throws UnsupportedKeyError for keys the agent refuses
 * by policy (RSA < 1024 bits) and InvalidKeyError for bodies that are not a consistent key.
 */
export function importPrivateKey(body: PrivateKeyBody): HeldKey {
  try {
    return importUnchecked(body);
  } catch (err) {
    if (err instanceof InvalidKeyError || err instanceof UnsupportedKeyError) throw err;
    if (err instanceof ProtocolError) throw new InvalidKeyError(err.message, { cause: err });
    // OpenSSL rejected the DER: report it without echoing anything from the key.
    throw new InvalidKeyError(`${body.type} key could not be imported`, { cause: err });
  }
}

function curveOf(algorithm: KeyAlgorithm): Curve {
  return algorithm.curve!;
}

/** The row of a body's plain key type. */
function algorithmOf(body: PrivateKeyBody): KeyAlgorithm {
  const algorithm = keyAlgorithm(body.type)?.algorithm;
  if (algorithm !== undefined) return algorithm;
  throw new UnsupportedKeyError(`unsupported key type ${body.type}`);
}

function importUnchecked(body: PrivateKeyBody): HeldKey {
  switch (body.kind) {
    case 'ed25519': {
      const privateKey = ed25519Key(body.publicKey, body.secret);
      return { algorithm: algorithmOf(body), type: body.type, publicBlob: publicBlobOfBody(body), bits: 256, privateKey };
    }
    case 'ed25519-cert': {
      const certificate = certificateOf(body);
      const pub = expectKind(certificate, 'ed25519');
      if (!pub.publicKey.equals(body.publicKey)) throw new InvalidKeyError('certificate does not certify this key');
      const privateKey = ed25519Key(body.publicKey, body.secret);
      return { algorithm: algorithmOf(body), type: body.type, publicBlob: certificate.blob, bits: 256, privateKey, certificate };
    }
    case 'rsa': {
      const pub: RsaPublicKey = { kind: 'rsa', type: body.type, e: body.e, n: body.n };
      const { key, bits } = rsaKey(pub, body.d, body.iqmp, body.p, body.q);
      return { algorithm: algorithmOf(body), type: body.type, publicBlob: publicBlobOfBody(body), bits, privateKey: key };
    }
    case 'rsa-cert': {
      const certificate = certificateOf(body);
      const { key, bits } = rsaKey(expectKind(certificate, 'rsa'), body.d, body.iqmp, body.p, body.q);
      return { algorithm: algorithmOf(body), type: body.type, publicBlob: certificate.blob, bits, privateKey: key, certificate };
    }
    case 'ecdsa': {
      const pub: EcdsaPublicKey = { kind: 'ecdsa', type: body.type, curve: body.curve, point: body.point };
      const privateKey = ecdsaKey(pub, body.d);
      const algorithm = algorithmOf(body);
      return { algorithm, type: body.type, publicBlob: publicBlobOfBody(body), bits: curveOf(algorithm).bits, privateKey };
    }
    case 'ecdsa-cert': {
      const certificate = certificateOf(body);
      const pub = expectKind(certificate, 'ecdsa');
      const privateKey = ecdsaKey(pub, body.d);
      const algorithm = algorithmOf(body);
      return { algorithm, type: body.type, publicBlob: certificate.blob, bits: curveOf(algorithm).bits, privateKey, certificate };
    }
  }
}
