/**
 * What the keyring needs of registered keys (POLICY.md §3, `[[key]] file=`): listed from the
 * start, decrypted on first use. policy/registered-keys.ts implements it; the keyring only
 * sees this interface (agent/ never imports policy/).
 */
import type { HeldKey } from '../keys/held-key';
import type { KeyView } from './ports';

/**
 * Asks for the passphrase of a registered key. Resolves with it (the caller zeroes it after
 * use) or null when the user cancels or no method can ask. `signal` withdraws the question
 * (another method, `tsagent unlock-key`, answered first).
 */
export type PassphraseAsker = (prompt: string, attempt: number, signal?: AbortSignal) => Promise<Buffer | null>;

export interface RegisteredKeyView {
  /** Unique among the registered keys: `tsagent unlock-key NAME`. */
  readonly name: string;
  /** source "config", name from the config. */
  readonly view: KeyView;
}

/** `[[key]] fingerprint=` settings a key added with ssh-add takes (POLICY.md §2). */
export interface AddedKeySettings {
  readonly name: string | null;
  readonly confirm: boolean;
}

export interface RegisteredKeySource {
  /** Config order. */
  list(): readonly RegisteredKeyView[];
  /** The private half if it is in memory now; never asks. Called on the hot path. */
  held(name: string): HeldKey | undefined;
  /** Reads and decrypts off the event loop, asking `ask` up to three times; rejects on failure. */
  unlock(name: string, ask: PassphraseAsker): Promise<HeldKey>;
  /**
   * `tsagent unlock-key`: one passphrase (zeroed), one attempt; or, while a signature waits
   * for this key's passphrase, the answer to that question.
   */
  unlockWith(name: string, passphrase: Buffer): Promise<void>;
  drop(name: string): void;
  /** Lock, stop: every decrypted half at once. */
  dropAll(): void;
  /** Seconds until `unlock-for` drops the private half; null when not loaded or kept until lock. */
  lifetimeLeft(name: string): number | null;
  addedKeySettings(fingerprint: string): AddedKeySettings | undefined;
}
