/**
 * Sealing private keys while the agent is locked (beyond OpenSSH, which keeps them usable in
 * memory): each KeyObject is exported once as PKCS#8 and encrypted with XSalsa20-Poly1305
 * (tweetnacl's secretbox) under a key derived from the lock passphrase. tweetnacl's
 * convenience API copies the plaintext into a padded array it never wipes, so the low-level
 * call is used with a padded buffer of our own: every buffer that held the plaintext export is
 * off the V8 heap and wiped (secret-bytes.ts). Unsealing reverses it.
 * See README "What is in memory, and when" for what OpenSSL itself keeps.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { secretBuffer } from '../keys/secret-bytes';

/** crypto_secretbox's nonce (XSalsa20: 24 bytes; tweetnacl's secretbox.nonceLength). */
const NONCE_BYTES = 24;
/** crypto_secretbox works on 32 zero bytes followed by the message (NaCl's padding). */
const ZERO_BYTES = 32;
/** The ciphertext starts with 16 zero bytes that are not stored. */
const BOX_ZERO_BYTES = 16;

/** tweetnacl's low-level secretbox (untyped in its .d.ts): both return 0 on success. */
interface LowLevelSecretbox {
  crypto_secretbox(c: Uint8Array, m: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
  crypto_secretbox_open(m: Uint8Array, c: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
}
let loaded: LowLevelSecretbox | undefined;

/**
 * tweetnacl, loaded at the first lock: loading it reads crypto.randomBytes, which would
 * otherwise load node:crypto at every start (the bundle requires it on first use, issue 16).
 */
function lowlevel(): LowLevelSecretbox {
  return (loaded ??= (require('tweetnacl') as { readonly lowlevel: LowLevelSecretbox }).lowlevel);
}

export function sealPrivateKey(key: KeyObject, sealingKey: Uint8Array): Buffer {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  const padded = secretBuffer(ZERO_BYTES + der.length);
  padded.set(der, ZERO_BYTES);
  der.fill(0);
  try {
    const nonce = randomBytes(NONCE_BYTES);
    const box = Buffer.alloc(padded.length);
    lowlevel().crypto_secretbox(box, padded, padded.length, nonce, sealingKey);
    return Buffer.concat([nonce, box.subarray(BOX_ZERO_BYTES)]);
  } finally {
    padded.fill(0);
  }
}

/** The KeyObject back, or undefined when the box does not open under this key. */
export function unsealPrivateKey(sealed: Buffer, sealingKey: Uint8Array): KeyObject | undefined {
  const box = Buffer.alloc(BOX_ZERO_BYTES + sealed.length - NONCE_BYTES);
  sealed.copy(box, BOX_ZERO_BYTES, NONCE_BYTES);
  const padded = secretBuffer(box.length);
  try {
    if (lowlevel().crypto_secretbox_open(padded, box, box.length, sealed.subarray(0, NONCE_BYTES), sealingKey) !== 0)
      return undefined;
    return createPrivateKey({ key: padded.subarray(ZERO_BYTES), format: 'der', type: 'pkcs8' });
  } finally {
    padded.fill(0);
  }
}
