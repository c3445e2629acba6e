/**
 * Signing with a held key, producing the SSH signature blob `string algorithm, string bytes`
 * (RFC 4253 §6.6; RFC 8332 for rsa-sha2-*, RFC 5656 §3.1.2 for ECDSA, RFC 8709 §6 for ed25519).
 * The algorithm and hash come from the key algorithm table (protocol/algorithms.ts).
 */
import { sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { signatureFor } from '../protocol/algorithms';
import type { SignatureAlgorithm } from '../protocol/algorithms';
import { SshWriter } from '../protocol/wire';
import { ecdsaSignatureFromDer } from './ecdsa-signature';
import type { HeldKey } from './held-key';

/** The signature algorithm a SIGN_REQUEST's flags select for an RSA key (RFC 9987 §5.6.1). */
export { signatureFor } from '../protocol/algorithms';

/** The SSH signature blob: `string algorithm, string bytes` (RFC 4253 §6.6). */
export function signatureBlob(algorithm: string, bytes: Uint8Array): Buffer {
  return new SshWriter(algorithm.length + bytes.length + 16).string(algorithm).string(bytes).finish();
}

function signAsync(hash: string | null, data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    cryptoSign(hash, data, key, (err, sig) => (err ? reject(err) : resolve(sig)));
  });
}

/** Largest RSA modulus signed on the event loop (about 0.3 ms for 2048 bits here). */
const INLINE_RSA_MAX_BITS = 2048;

function heldSignatureBlob(key: HeldKey, sig: SignatureAlgorithm, raw: Buffer): Buffer {
  return signatureBlob(sig.name, key.algorithm.kind === 'ecdsa' ? ecdsaSignatureFromDer(raw) : raw);
}

/**
 * Signs for one keyring. It owns the inline RSA budget: one RSA signature per event-loop
 * turn may run inline, so a lone request (c=1) saves the thread-pool hop (+30% measured in
 * bench/), while a burst goes to the pool and uses every core. The flag is cleared by the
 * next turn (setImmediate), so at most one ~0.3 ms signature ever sits in front of other work.
 */
export class Signer {
  private inlineRsaUsed = false;

  private claimInlineRsa(): boolean {
    if (this.inlineRsaUsed) return false;
    this.inlineRsaUsed = true;
    setImmediate(() => {
      this.inlineRsaUsed = false;
    });
    return true;
  }

  /**
   * Signs `data` on the event loop when that is cheap: ed25519 and P-256 (tens of µs) always,
   * RSA up to 2048 bits once per turn. Undefined means: use sign (thread pool).
   */
  signInline(key: HeldKey, data: Buffer, flags: number): Buffer | undefined {
    const { algorithm } = key;
    switch (algorithm.kind) {
      case 'ed25519':
        break;
      case 'ecdsa':
        if (key.bits !== 256) return undefined;
        break;
      case 'rsa':
        if (key.bits > INLINE_RSA_MAX_BITS || !this.claimInlineRsa()) return undefined;
        break;
    }
    const sig = signatureFor(algorithm, flags);
    return heldSignatureBlob(key, sig, cryptoSign(sig.hash, data, key.privateKey));
  }

  /**
   * Signs `data`: inline when signInline allows, else through the callback form of
   * crypto.sign, which runs on libuv's thread pool, so a slow signature (RSA-4096, P-521)
   * never blocks other connections.
   */
  async sign(key: HeldKey, data: Buffer, flags: number): Promise<Buffer> {
    const inline = this.signInline(key, data, flags);
    if (inline !== undefined) return inline;
    const sig = signatureFor(key.algorithm, flags);
    return heldSignatureBlob(key, sig, await signAsync(sig.hash, data, key.privateKey));
  }
}
