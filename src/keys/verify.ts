/**
 * Verifying SSH signature blobs against public key blobs: used for session-bind host key
 * signatures and by the client's AgentKey.verify. Never throws on a bad signature: false.
 */
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { plainAlgorithm, signatureAlgorithm } from '../protocol/algorithms';
import { parsePublicKeyBlob, plainKeyOf } from '../protocol/public-key';
import type { PlainPublicKey } from '../protocol/public-key';
import { SshReader, mpintToUnsigned } from '../protocol/wire';
import { rememberBounded } from '../bounded-map';

const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64url');

/** A node:crypto public KeyObject for a plain public key. */
export function publicKeyObject(k: PlainPublicKey): KeyObject {
  switch (k.kind) {
    case 'ed25519':
      return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(k.publicKey) }, format: 'jwk' });
    case 'rsa':
      return createPublicKey({
        key: { kty: 'RSA', n: b64u(mpintToUnsigned(k.n)), e: b64u(mpintToUnsigned(k.e)) },
        format: 'jwk',
      });
    case 'ecdsa': {
      const c = plainAlgorithm(k.type)!.curve!;
      return createPublicKey({
        key: {
          kty: 'EC',
          crv: c.jwk,
          x: b64u(k.point.subarray(1, 1 + c.fieldBytes)),
          y: b64u(k.point.subarray(1 + c.fieldBytes)),
        },
        format: 'jwk',
      });
    }
  }
}

/**
 * KeyObjects for key blobs seen again and again (the host keys every `ssh` connection binds
 * with session-bind): importing one costs more than verifying with it. Bounded, least
 * recently used out first; public keys only, so nothing here needs wiping.
 */
export class PublicKeyCache {
  private readonly objects = new Map<string, KeyObject>();

  constructor(private readonly limit = 64) {}

  objectFor(blob: Buffer, key: PlainPublicKey): KeyObject {
    const id = blob.toString('latin1');
    const obj = this.objects.get(id) ?? publicKeyObject(key);
    rememberBounded(this.objects, id, obj, this.limit);
    return obj;
  }
}

/**
 * verifySignature for the session-bind signatures of an agent's life. `ssh -A` binds every
 * forwarded agent channel with the same host key, session id and signature, so a signature
 * that verified is remembered by its exact bytes (a different byte anywhere is a miss and is
 * verified in full; the answer for the same bytes cannot change). A new ssh session has a
 * new session id and always pays one verification. Bounded like PublicKeyCache; failures
 * are not remembered.
 */
export class SignatureVerifier {
  private readonly keys: PublicKeyCache;
  private readonly verified = new Map<string, true>();

  constructor(private readonly limit = 64) {
    this.keys = new PublicKeyCache(limit);
  }

  verify(keyBlob: Buffer, data: Buffer, signature: Buffer): boolean {
    // The lengths first, so no two different triples give the same id (the parts are binary).
    const id = `${keyBlob.length},${data.length},${signature.length}:${keyBlob.toString('latin1')}${data.toString('latin1')}${signature.toString('latin1')}`;
    if (!this.verified.has(id) && !verifySignature(keyBlob, data, signature, undefined, this.keys)) return false;
    rememberBounded(this.verified, id, true, this.limit);
    return true;
  }
}

/**
 * True when `signature` (an SSH signature blob) is a valid signature of `data` by the key
 * in `keyBlob` (a plain key or a certificate, whose certified key is used).
 * `allowedAlgorithms` optionally restricts the signature algorithm name; `cache` keeps the
 * imported key for the next call.
 */
export function verifySignature(
  keyBlob: Buffer,
  data: Buffer,
  signature: Buffer,
  allowedAlgorithms?: readonly string[],
  cache?: PublicKeyCache,
): boolean {
  try {
    const key = plainKeyOf(parsePublicKeyBlob(keyBlob));
    if (key === undefined) return false;
    const r = new SshReader(signature);
    const alg = r.text();
    const bytes = r.string();
    r.end();
    if (allowedAlgorithms !== undefined && !allowedAlgorithms.includes(alg)) return false;
    // The signature algorithm must be one of this key's rows (RSA has three, others one).
    const found = signatureAlgorithm(alg);
    if (found === undefined || found.algorithm.name !== key.type) return false;
    const pub = cache === undefined ? publicKeyObject(key) : cache.objectFor(keyBlob, key);
    const { hash } = found.signature;
    const c = found.algorithm.curve;
    if (c === undefined) return cryptoVerify(hash, data, pub, bytes);
    // ECDSA signature bytes are `mpint r, mpint s` (RFC 5656 §3.1.2); OpenSSL wants r || s.
    const sr = new SshReader(bytes);
    const rr = mpintToUnsigned(sr.mpint());
    const ss = mpintToUnsigned(sr.mpint());
    sr.end();
    if (rr.length > c.fieldBytes || ss.length > c.fieldBytes) return false;
    const p1363 = Buffer.alloc(2 * c.fieldBytes);
    rr.copy(p1363, c.fieldBytes - rr.length);
    ss.copy(p1363, 2 * c.fieldBytes - ss.length);
    return cryptoVerify(hash, data, { key: pub, dsaEncoding: 'ieee-p1363' }, p1363);
  } catch {
    return false;
  }
}
