/**
 * The agent lock (RFC 9987 §5.8; OpenSSH ssh-agent.c process_lock_agent). One scrypt run
 * over the passphrase and a random salt gives 64 bytes: the first half is kept as the
 * verifier (compared in constant time), the second half is handed to the keyring to seal the
 * private keys and is never stored.
 *
 * Guessing is rate-limited for the whole agent, not per reply: unlock attempts from every
 * connection wait in one queue and are tried one at a time, and a wrong one holds the queue
 * for 0.1 s times the failures so far (capped at 10 s, OpenSSH's figures) before the next
 * attempt, from anyone, is tried. A hundred connections therefore guess no faster than one.
 * Nothing else waits: other requests never enter this queue.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const SALT_BYTES = 16;
const HALF = 32;
/** scrypt cost: ~30 ms on these machines, off the event loop (libuv thread pool). */
const SCRYPT_OPTIONS = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const DELAY_STEP_MS = 100;
const DELAY_CAP_MS = 10_000;
/** Attempts that may wait their turn; beyond that an attempt is refused untried. */
export const MAX_WAITING_UNLOCKS = 1024;

function derive(passphrase: Uint8Array, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(passphrase, salt, 2 * HALF, SCRYPT_OPTIONS, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export type UnlockResult =
  | { readonly outcome: 'unlocked'; readonly sealingKey: Buffer }
  | { readonly outcome: 'wrong-passphrase' | 'not-locked' | 'queue-full' };

/** How the back-off waits (tests pass their own to step through it). */
export type BackoffSleep = (ms: number) => Promise<void>;

export class PassphraseLock {
  /** The tail of the one unlock queue: settles when the last attempt in it is done. */
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  /** Attempts tried so far (right or wrong), for tests and audits. */
  attempts = 0;

  constructor(private readonly sleep: BackoffSleep = defaultSleep) {}

  private salt: Buffer | undefined;
  private verifier: Buffer | undefined;
  private failures = 0;
  /** Set synchronously when a lock starts, so two racing LOCKs cannot both succeed. */
  private locking = false;

  get locked(): boolean {
    return this.locking || this.verifier !== undefined;
  }

  /**
   * Locks, returning the 32-byte key to seal the private keys with (the caller zeroes it), or
   * undefined when already locked or the passphrase is empty (both FAILURE in OpenSSH).
   */
  async lock(passphrase: Uint8Array): Promise<Buffer | undefined> {
    if (this.locked || passphrase.length === 0) return undefined;
    this.locking = true;
    try {
      const salt = randomBytes(SALT_BYTES);
      const derived = await derive(passphrase, salt);
      this.verifier = Buffer.from(derived.subarray(0, HALF));
      this.salt = salt;
      this.failures = 0;
      const sealingKey = Buffer.from(derived.subarray(HALF));
      derived.fill(0);
      return sealingKey;
    } finally {
      this.locking = false;
    }
  }

  /**
   * Checks the passphrase after every attempt queued before it; a wrong one waits out the
   * back-off, holding the queue, before answering.
   */
  async unlock(passphrase: Uint8Array, sleep: BackoffSleep = this.sleep): Promise<UnlockResult> {
    if (!this.locked) return { outcome: 'not-locked' };
    if (this.waiting >= MAX_WAITING_UNLOCKS) return { outcome: 'queue-full' };
    this.waiting++;
    const turn = this.queue.then(() => this.attempt(passphrase, sleep));
    this.queue = turn.catch(() => undefined);
    try {
      return await turn;
    } finally {
      this.waiting--;
    }
  }

  private async attempt(passphrase: Uint8Array, sleep: BackoffSleep): Promise<UnlockResult> {
    const { salt, verifier } = this;
    if (salt === undefined || verifier === undefined) return { outcome: 'not-locked' };
    this.attempts++;
    const derived = await derive(passphrase, salt);
    try {
      // A LOCK/UNLOCK may have changed the state while we hashed.
      if (this.verifier !== verifier) return { outcome: this.verifier === undefined ? 'not-locked' : 'wrong-passphrase' };
      if (timingSafeEqual(derived.subarray(0, HALF), verifier)) {
        this.salt = undefined;
        this.verifier = undefined;
        this.failures = 0;
        return { outcome: 'unlocked', sealingKey: Buffer.from(derived.subarray(HALF)) };
      }
    } finally {
      derived.fill(0);
    }
    this.failures++;
    await sleep(Math.min(DELAY_STEP_MS * this.failures, DELAY_CAP_MS));
    return { outcome: 'wrong-passphrase' };
  }
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
