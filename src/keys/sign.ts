/**
 * Signing with a held key, producing the SSH signature blob `string algorithm, string bytes`
 * (RFC 4253 §6.6; RFC 8332 for rsa-sha2-*, RFC 5656 §3.1.2 for ECDSA, RFC 8709 §6 for ed25519).
 */
import { sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { SIGN_FLAG } from '../protocol/messages';
import { SshWriter, mpintFromUnsigned } from '../protocol/wire';
import type { HeldKey } from './held-key';

export interface RsaAlgorithm {
  readonly name: 'ssh-rsa' | 'rsa-sha2-256' | 'rsa-sha2-512';
  readonly hash: 'sha1' | 'sha256' | 'sha512';
}

const SSH_RSA: RsaAlgorithm = { name: 'ssh-rsa', hash: 'sha1' };
const RSA_SHA2_256: RsaAlgorithm = { name: 'rsa-sha2-256', hash: 'sha256' };
const RSA_SHA2_512: RsaAlgorithm = { name: 'rsa-sha2-512', hash: 'sha512' };

/**
 * RFC 9987 §5.6.1 / OpenSSH ssh-agent.c: flag 2 selects rsa-sha2-256, flag 4 rsa-sha2-512,
 * 256 winning when both are set; no flag means the legacy SHA-1 `ssh-rsa`.
 * RSA certificates sign with the plain algorithm name too.
 */
export function rsaAlgorithmFor(flags: number): RsaAlgorithm {
  if (flags & SIGN_FLAG.RSA_SHA2_256) return RSA_SHA2_256;
  if (flags & SIGN_FLAG.RSA_SHA2_512) return RSA_SHA2_512;
  return SSH_RSA;
}

/** The SSH signature blob: `string algorithm, string bytes` (RFC 4253 §6.6). */
export function signatureBlob(algorithm: string, bytes: Uint8Array): Buffer {
  return new SshWriter(algorithm.length + bytes.length + 16).string(algorithm).string(bytes).finish();
}

function signAsync(hash: string | null, data: Buffer, key: KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    cryptoSign(hash, data, key, (err, sig) => (err ? reject(err) : resolve(sig)));
  });
}

/** ECDSA signature bytes are `mpint r, mpint s`; OpenSSL's P1363 output is r || s, fixed width. */
export function ecdsaSignatureBytes(p1363: Buffer): Buffer {
  const half = p1363.length / 2;
  return new SshWriter(p1363.length + 16)
    .mpint(mpintFromUnsigned(p1363.subarray(0, half)))
    .mpint(mpintFromUnsigned(p1363.subarray(half)))
    .finish();
}

/** Largest RSA modulus signed on the event loop (about 0.3 ms for 2048 bits here). */
const INLINE_RSA_MAX_BITS = 2048;

/**
 * One RSA signature per event-loop turn may run inline: a lone request (c=1) saves the
 * thread-pool hop (+30% measured in bench/), while a burst goes to the pool and uses every
 * core. The flag is cleared by the next turn (setImmediate), so at most one ~0.3 ms
 * signature ever sits in front of other work.
 */
let inlineRsaUsed = false;
function claimInlineRsa(): boolean {
  if (inlineRsaUsed) return false;
  inlineRsaUsed = true;
  setImmediate(() => {
    inlineRsaUsed = false;
  });
  return true;
}

/**
 * Signs `data` on the event loop when that is cheap: ed25519 and P-256 (tens of µs) always,
 * RSA up to 2048 bits once per turn. Undefined means: use signData (thread pool).
 */
export function signInline(key: HeldKey, data: Buffer, flags: number): Buffer | undefined {
  switch (key.family) {
    case 'ed25519':
      return signatureBlob('ssh-ed25519', cryptoSign(null, data, key.privateKey));
    case 'ecdsa': {
      const curve = key.curve!;
      if (curve.bits !== 256) return undefined;
      const raw = cryptoSign(curve.hash, data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
      return signatureBlob(`ecdsa-sha2-${curve.sshName}`, ecdsaSignatureBytes(raw));
    }
    case 'rsa': {
      if (key.bits > INLINE_RSA_MAX_BITS || !claimInlineRsa()) return undefined;
      const alg = rsaAlgorithmFor(flags);
      return signatureBlob(alg.name, cryptoSign(alg.hash, data, key.privateKey));
    }
  }
}

/**
 * Signs `data`: inline when signInline allows, else through the callback form of
 * crypto.sign, which runs on libuv's thread pool, so a slow signature (RSA-4096, P-521)
 * never blocks other connections.
 */
export async function signData(key: HeldKey, data: Buffer, flags: number): Promise<Buffer> {
  const inline = signInline(key, data, flags);
  if (inline !== undefined) return inline;
  switch (key.family) {
    case 'ed25519':
      // signInline always signs ed25519; there is no slower path to take.
      throw new Error('ed25519 signature was not made inline');
    case 'ecdsa': {
      const curve = key.curve!;
      const raw = await signAsync(curve.hash, data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
      return signatureBlob(`ecdsa-sha2-${curve.sshName}`, ecdsaSignatureBytes(raw));
    }
    case 'rsa': {
      const alg = rsaAlgorithmFor(flags);
      return signatureBlob(alg.name, await signAsync(alg.hash, data, key.privateKey));
    }
  }
}
