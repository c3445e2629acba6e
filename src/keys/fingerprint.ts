/** Key fingerprints as `ssh-keygen -l -E sha256|md5` prints them. */
import { createHash } from 'node:crypto';

export type FingerprintHash = 'sha256' | 'md5';

export function fingerprint(blob: Uint8Array, hash: FingerprintHash = 'sha256'): string {
  const digest = createHash(hash).update(blob).digest();
  if (hash === 'md5') {
    return 'MD5:' + Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(':');
  }
  return 'SHA256:' + digest.toString('base64').replace(/=+$/, '');
}
