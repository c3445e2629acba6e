/**
 * Turns a decoded ADD_IDENTITY key body into a HeldKey: checks that the private and public
 * halves belong together (as OpenSSH's sshkey_private_deserialize does) and builds the
 * node:crypto KeyObject through JWK, which OpenSSL imports for all three families.
 * Errors never quote key material.
 */
import { createECDH, createPrivateKey, createPublicKey } from 'node:crypto';
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

/** OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE: smaller RSA keys are refused. */
export const RSA_MIN_BITS = 1024;
/** OpenSSH's SSHBUF_MAX_BIGNUM in bits. */
export const RSA_MAX_BITS = 16384;

const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64url');

function toBigInt(raw: Uint8Array): bigint {
  const mag = mpintToUnsigned(raw);
  return mag.length === 0 ? 0n : BigInt('0x' + mag.toString('hex'));
}

function fromBigInt(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Buffer.from(hex, 'hex');
}

function leftPad(b: Buffer, len: number): Buffer {
  if (b.length > len) throw new InvalidKeyError('ECDSA private scalar too long');
  if (b.length === len) return b;
  const out = Buffer.alloc(len);
  b.copy(out, len - b.length);
  return out;
}

/** Parses the certificate from a private copy: the request buffer it came in is wiped later. */
/** The key type name at the start of a blob ('' when unreadable). */
function parseKeyType(blob: Buffer): string {
  try {
    return new SshReader(blob).text();
  } catch {
    return '';
  }
}

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

function ed25519Key(publicKey: Buffer, secret: Buffer): KeyObject {
  if (publicKey.length !== 32) throw new InvalidKeyError('ed25519 public key is not 32 bytes');
  if (secret.length !== 64) throw new InvalidKeyError('ed25519 secret is not 64 bytes');
  if (!secret.subarray(32).equals(publicKey)) throw new InvalidKeyError('ed25519 secret does not match its public key');
  const key = createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: b64u(secret.subarray(0, 32)), x: b64u(publicKey) },
    format: 'jwk',
  });
  // OpenSSL does not check x against d on import: derive the public key and compare.
  const derived = createPublicKey(key).export({ format: 'jwk' }).x;
  if (derived !== b64u(publicKey)) throw new InvalidKeyError('ed25519 seed does not match its public key');
  return key;
}

function rsaKey(pub: RsaPublicKey, dRaw: Buffer, iqmpRaw: Buffer, pRaw: Buffer, qRaw: Buffer): { key: KeyObject; bits: number } {
  const n = toBigInt(pub.n);
  const e = toBigInt(pub.e);
  const bits = n.toString(2).length;
  if (bits < RSA_MIN_BITS) throw new UnsupportedKeyError(`RSA key of ${bits} bits is below the ${RSA_MIN_BITS}-bit minimum`);
  if (bits > RSA_MAX_BITS) throw new UnsupportedKeyError(`RSA key of ${bits} bits is above the ${RSA_MAX_BITS}-bit maximum`);
  const d = toBigInt(dRaw);
  const p = toBigInt(pRaw);
  const q = toBigInt(qRaw);
  const iqmp = toBigInt(iqmpRaw);
  if (e < 3n || e % 2n === 0n) throw new InvalidKeyError('RSA public exponent is invalid');
  if (p < 2n || q < 2n || p * q !== n) throw new InvalidKeyError('RSA primes do not match the modulus');
  if (d <= 1n || d >= n) throw new InvalidKeyError('RSA private exponent is out of range');
  if ((iqmp * q) % p !== 1n) throw new InvalidKeyError('RSA CRT coefficient is invalid');
  const key = createPrivateKey({
    key: {
      kty: 'RSA',
      n: b64u(fromBigInt(n)),
      e: b64u(fromBigInt(e)),
      d: b64u(fromBigInt(d)),
      p: b64u(fromBigInt(p)),
      q: b64u(fromBigInt(q)),
      dp: b64u(fromBigInt(d % (p - 1n))),
      dq: b64u(fromBigInt(d % (q - 1n))),
      qi: b64u(fromBigInt(iqmp)),
    },
    format: 'jwk',
  });
  return { key, bits };
}

function ecdsaKey(pub: EcdsaPublicKey, dRaw: Buffer): KeyObject {
  const curve = curveOf(plainAlgorithm(pub.type)!);
  if (pub.curve !== curve.sshName) throw new InvalidKeyError('ECDSA curve name does not match the key type');
  const { point } = pub;
  if (point.length !== 1 + 2 * curve.fieldBytes || point[0] !== 0x04) {
    throw new InvalidKeyError('ECDSA public point is not an uncompressed point of the curve');
  }
  const d = leftPad(mpintToUnsigned(dRaw), curve.fieldBytes);
  let derived: Buffer;
  try {
    const ecdh = createECDH(curve.openssl);
    ecdh.setPrivateKey(d);
    derived = ecdh.getPublicKey();
  } catch (err) {
    throw new InvalidKeyError('ECDSA private scalar is invalid', { cause: err });
  }
  if (!derived.equals(point)) throw new InvalidKeyError('ECDSA private scalar does not match its public point');
  return createPrivateKey({
    key: {
      kty: 'EC',
      crv: curve.jwk,
      x: b64u(point.subarray(1, 1 + curve.fieldBytes)),
      y: b64u(point.subarray(1 + curve.fieldBytes)),
      d: b64u(d),
    },
    format: 'jwk',
  });
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
    // OpenSSL rejected the JWK: report it without echoing anything from the key.
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
