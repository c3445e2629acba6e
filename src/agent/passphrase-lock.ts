/**
 * The agent lock (RFC 9987 §5.8; OpenSSH ssh-agent.c process_lock_agent): only a salted
 * scrypt hash of the passphrase is kept, compared in constant time. Each wrong unlock delays
 * *that* reply by 0.1 s times the failures so far (capped at 10 s), like OpenSSH, without stalling
 * anything else: the delay is a timer, not a sleep.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** scrypt cost: ~30 ms on these machines, off the event loop (libuv thread pool). */
const SCRYPT_OPTIONS = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const DELAY_STEP_MS = 100;
const DELAY_CAP_MS = 10_000;

function hash(passphrase: Uint8Array, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(passphrase, salt, HASH_BYTES, SCRYPT_OPTIONS, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export type UnlockOutcome = 'unlocked' | 'wrong-passphrase' | 'not-locked';

export class PassphraseLock {
  private salt: Buffer | undefined;
  private digest: Buffer | undefined;
  private failures = 0;
  /** Set synchronously when a lock starts, so two racing LOCKs cannot both succeed. */
  private locking = false;

  get locked(): boolean {
    return this.locking || this.digest !== undefined;
  }

  /** Returns false when already locked or the passphrase is empty (both FAILURE in OpenSSH). */
  async lock(passphrase: Uint8Array): Promise<boolean> {
    if (this.locked || passphrase.length === 0) return false;
    this.locking = true;
    try {
      const salt = randomBytes(SALT_BYTES);
      this.digest = await hash(passphrase, salt);
      this.salt = salt;
      this.failures = 0;
      return true;
    } finally {
      this.locking = false;
    }
  }

  /** Checks the passphrase; on a wrong one waits out the back-off before answering. */
  async unlock(passphrase: Uint8Array, sleep: (ms: number) => Promise<void> = defaultSleep): Promise<UnlockOutcome> {
    const { salt, digest } = this;
    if (salt === undefined || digest === undefined) return 'not-locked';
    const candidate = await hash(passphrase, salt);
    // A concurrent UNLOCK may have won while we hashed.
    if (this.digest !== digest) return this.digest === undefined ? 'not-locked' : 'wrong-passphrase';
    if (timingSafeEqual(candidate, digest)) {
      this.salt = undefined;
      this.digest = undefined;
      this.failures = 0;
      return 'unlocked';
    }
    this.failures++;
    await sleep(Math.min(DELAY_STEP_MS * this.failures, DELAY_CAP_MS));
    return 'wrong-passphrase';
  }
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
