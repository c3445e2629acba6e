/**
 * Making OpenSSL free the private keys the keyring let go of (lock, remove, remove-all,
 * expiry, SIGUSR1). A node:crypto KeyObject has no destroy(): its OpenSSL key is freed — and
 * wiped, as RSA_free, EC_KEY_free and the ed25519 key free all clear the private values —
 * only when V8 collects the JS object, which may be never on an idle agent. So after a key
 * is dropped, one full garbage collection is run: deferred and coalesced (many drops, one
 * collection), never on the list/sign path. It costs a few ms on the daemon's small heap.
 * `gc` is not exposed to programs by default: the flag is turned on at run time and the
 * function taken from a fresh context (node:vm), which is where V8 installs it.
 */
import type { Logger } from '../log';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Coalescing window: a burst of drops (ssh-add -D of many keys) costs one collection. */
const COLLECT_DELAY_MS = 20;

type Collect = () => void;

function exposedGc(): Collect | undefined {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as Collect;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as Collect) : undefined;
  } catch {
    return undefined;
  }
}

/** One per keyring: it owns the pending collection. */
export class KeyRelease {
  private timer: NodeJS.Timeout | undefined;
  private collect: Collect | undefined | null = null;

  /**
   * @param afterCollect runs after each collection: the daemon hands the memory glibc now
   * holds free back to the kernel (malloc_trim), so what a burst used is given back.
   */
  constructor(
    private readonly logger?: Logger,
    private readonly afterCollect?: () => void,
  ) {}

  /** Private keys were dropped: have their memory collected soon. */
  released(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => this.run(), COLLECT_DELAY_MS);
    // A pending collection alone must not keep a process (or a test) alive.
    this.timer.unref();
  }

  /** Cancels a pending collection (the keyring is going away). */
  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private run(): void {
    this.timer = undefined;
    if (this.collect === null) this.collect = exposedGc();
    const start = performance.now();
    this.collect?.();
    this.afterCollect?.();
    this.logger?.debug(
      { collected: this.collect !== undefined, ms: Math.round((performance.now() - start) * 10) / 10 },
      'private key memory released',
    );
  }
}
