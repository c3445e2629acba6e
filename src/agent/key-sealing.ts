/**
 * Sealing private keys while the agent is locked (beyond OpenSSH, which keeps them usable in
 * memory): each KeyObject is exported once as PKCS#8, encrypted with tweetnacl's secretbox
 * (XSalsa20-Poly1305) under a key derived from the lock passphrase, and the plaintext export
 * is zeroed. Unsealing reverses it. See README "What locking protects" for the limits.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';

const NONCE_BYTES = nacl.secretbox.nonceLength;

export function sealPrivateKey(key: KeyObject, sealingKey: Uint8Array): Buffer {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  try {
    const nonce = randomBytes(NONCE_BYTES);
    const box = nacl.secretbox(der, nonce, sealingKey);
    return Buffer.concat([nonce, box]);
  } finally {
    der.fill(0);
  }
}

/** The KeyObject back, or undefined when the box does not open under this key. */
export function unsealPrivateKey(sealed: Buffer, sealingKey: Uint8Array): KeyObject | undefined {
  const der = nacl.secretbox.open(sealed.subarray(NONCE_BYTES), sealed.subarray(0, NONCE_BYTES), sealingKey);
  if (der === null) return undefined;
  try {
    return createPrivateKey({ key: Buffer.from(der.buffer, der.byteOffset, der.length), format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}
