/**
 * Registered keys (POLICY.md §3): `[[key]] file=` tables. At load (start, reload) each file's
 * public half is read — from the file itself in OpenSSH's format, else from `FILE.pub` — so
 * the key is listed at once without asking anything. The private half is read and decrypted
 * only when a signature first needs it (unlock), kept `unlock-for` seconds as a node:crypto
 * KeyObject (like the keyring's keys), and dropped on lock (dropAll).
 *
 * A file that is missing, unreadable, not a regular file (a directory, a FIFO: never opened
 * blocking), readable by group or others (ssh refuses those too: mode & 077), or of a type
 * the agent cannot hold, gives a KeyFileError naming it; the other keys still load.
 *
 * Passphrases arrive as Buffers from a PassphraseAsker (askpass, or `tsagent unlock-key`),
 * are zeroed after the attempt, and appear in no message or log.
 */
import { basename } from 'node:path';
import { KeyFileError, UnsupportedKeyError } from '../errors';
import type { KeyView } from '../agent/ports';
import type { KeyRelease } from '../agent/key-release';
import type { AddedKeySettings, PassphraseAsker, RegisteredKeySource } from '../agent/registered';
import type { HeldKey } from '../keys/held-key';
import type { PrivateKeyBody } from '../protocol/private-key';
import { parsePublicKeyBlob } from '../protocol/public-key';
import { describeProblem, readBounded } from './bounded-read';
import type { KeySpec } from './config-types';
import { openSshKeyHeader, parsePublicLine } from './key-file-public';

/*
 * Loaded on first use, not with this module: the config is loaded by every start, also the
 * parent of a background start, and an agent with no key files needs none of node:crypto,
 * sshpk or the decryption worker to begin serving (issue 16).
 */
const fingerprintOf = (blob: Buffer): string =>
  (require('../keys/fingerprint') as typeof import('../keys/fingerprint')).fingerprint(blob);
const importPrivateKey = (body: PrivateKeyBody): HeldKey =>
  (require('../keys/import-private') as typeof import('../keys/import-private')).importPrivateKey(body);
const parsePrivateKeyFile = (data: Buffer): ReturnType<typeof import('../keys/key-file').parsePrivateKeyFile> =>
  (require('../keys/key-file') as typeof import('../keys/key-file')).parsePrivateKeyFile(data);
const parsePrivateKeyInWorker: typeof import('./decrypt').parsePrivateKeyInWorker = (...args) =>
  (require('./decrypt') as typeof import('./decrypt')).parsePrivateKeyInWorker(...args);

/** Key files are a few KiB (an RSA-16384 PEM is under 13 KiB). */
const KEY_FILE_MAX_BYTES = 64 * 1024;
/** POLICY.md §3: three wrong answers fail the request. */
export const PASSPHRASE_ATTEMPTS = 3;
/** setTimeout's ceiling; longer unlock-for periods re-arm. */
const MAX_TIMER_MS = 0x7fffffff;

export type { PassphraseAsker };

export interface RegisteredKey {
  readonly spec: KeySpec;
  readonly file: string;
  /** [[key]] name, else the key's comment, else the file's base name. Unique. */
  readonly name: string;
  readonly blob: Buffer;
  readonly fingerprint: string;
  readonly type: string;
  readonly comment: string;
  /** What list and policy see. */
  readonly view: KeyView;
}

interface Unlocked {
  readonly key: HeldKey;
  /** Date.now() deadline, or null for "until the agent stops or locks". */
  readonly expiresAt: number | null;
  timer: NodeJS.Timeout | undefined;
}

export interface RegistrationResult {
  readonly keys: RegisteredKeys;
  /** One per [[key]] file that could not be registered; log or print them. */
  readonly errors: readonly KeyFileError[];
}

export function passphrasePrompt(k: Pick<RegisteredKey, 'name' | 'file'>): string {
  return `Enter passphrase for key "${k.name}" (${k.file}) to use it through tsagent: `;
}

export class RegisteredKeys implements RegisteredKeySource {
  private readonly byNameMap = new Map<string, RegisteredKey>();
  private readonly byFp = new Map<string, RegisteredKey>();
  private readonly unlocked = new Map<string, Unlocked>();
  private readonly pending = new Map<string, Promise<HeldKey>>();
  /** Keys whose passphrase is being asked now: `tsagent unlock-key` may answer instead. */
  private readonly waiting = new Map<string, (passphrase: Buffer) => void>();
  /** Bumped by dropAll, so a decryption that finishes after a lock is not kept. */
  private generation = 0;
  /** Has OpenSSL free the decrypted halves dropped here (expiry, lock, reload), like the keyring's. */
  private keyReleaseCache: KeyRelease | undefined;

  private keyRelease(): KeyRelease {
    this.keyReleaseCache ??= new (require('../agent/key-release') as typeof import('../agent/key-release')).KeyRelease();
    return this.keyReleaseCache;
  }

  /** `[[key]] fingerprint=` settings, for keys added later with ssh-add. */
  private readonly addedSettings = new Map<string, AddedKeySettings>();

  private constructor(
    private readonly keys: readonly RegisteredKey[],
    specs: readonly KeySpec[] = [],
  ) {
    for (const spec of specs) {
      if (spec.fingerprint !== null) this.addedSettings.set(spec.fingerprint, { name: spec.name, confirm: spec.confirm });
    }
    for (const k of keys) {
      this.byNameMap.set(k.name, k);
      this.byFp.set(k.fingerprint, k);
    }
  }

  /** Reads the public halves of every `file=` spec. Never throws for a bad file: it lands in `errors`. */
  static load(specs: readonly KeySpec[], opts: { readonly uid?: number } = {}): RegistrationResult {
    const keys: RegisteredKey[] = [];
    const errors: KeyFileError[] = [];
    const names = new Set<string>();
    const fps = new Set<string>();
    for (const spec of specs) {
      if (spec.file === null) continue;
      try {
        const k = registerFile(spec, spec.file, opts.uid);
        if (names.has(k.name))
          throw new KeyFileError(
            `key name ${JSON.stringify(k.name)} is already used by another [[key]]; give it a "name"`,
            spec.file,
          );
        if (fps.has(k.fingerprint)) throw new KeyFileError(`the same key (${k.fingerprint}) is registered twice`, spec.file);
        names.add(k.name);
        fps.add(k.fingerprint);
        keys.push(k);
      } catch (err) {
        errors.push(err instanceof KeyFileError ? err : new KeyFileError('cannot be registered', spec.file, { cause: err }));
      }
    }
    return { keys: new RegisteredKeys(keys, specs), errors };
  }

  list(): readonly RegisteredKey[] {
    return this.keys;
  }

  byName(name: string): RegisteredKey | undefined {
    return this.byNameMap.get(name);
  }

  byFingerprint(fp: string): RegisteredKey | undefined {
    return this.byFp.get(fp);
  }

  addedKeySettings(fingerprint: string): AddedKeySettings | undefined {
    return this.addedSettings.get(fingerprint);
  }

  /** file path -> fingerprint, for RulePolicy's key settings. */
  fileFingerprints(): Map<string, string> {
    return new Map(this.keys.map((k) => [k.file, k.fingerprint]));
  }

  /** The private half is in memory now. */
  isLoaded(name: string): boolean {
    return this.unlocked.has(name);
  }

  /** Seconds until the decrypted half is dropped; null when not loaded or kept until lock. */
  lifetimeLeft(name: string, now = Date.now()): number | null {
    const u = this.unlocked.get(name);
    if (u === undefined || u.expiresAt === null) return null;
    return Math.max(0, Math.ceil((u.expiresAt - now) / 1000));
  }

  /** The held key if its private half is in memory, without asking anything. */
  held(name: string): HeldKey | undefined {
    return this.unlocked.get(name)?.key;
  }

  /**
   * The usable key: the one in memory, or the file read and decrypted now, asking `ask` for
   * the passphrase up to three times when it is encrypted. Concurrent calls share one attempt.
   */
  unlock(name: string, ask: PassphraseAsker): Promise<HeldKey> {
    return this.unlockAsking(name, ask, PASSPHRASE_ATTEMPTS);
  }

  private unlockAsking(name: string, ask: PassphraseAsker, attempts: number): Promise<HeldKey> {
    const have = this.unlocked.get(name);
    if (have !== undefined) return Promise.resolve(have.key);
    const running = this.pending.get(name);
    if (running !== undefined) return running;
    const k = this.byNameMap.get(name);
    if (k === undefined) return Promise.reject(new KeyFileError('no registered key has this name', name));
    const gen = this.generation;
    const p = (async () => {
      const body = await readPrivate(k, this.answerable(name, ask), attempts);
      const held = importMatching(k, body);
      if (gen === this.generation) this.keep(k, held);
      return held;
    })().finally(() => this.pending.delete(name));
    this.pending.set(name, p);
    return p;
  }

  /**
   * `ask`, except that unlockWith may answer while it waits (POLICY.md §3: askpass or
   * `tsagent unlock-key`, first answer wins; the other question is withdrawn).
   */
  private answerable(name: string, ask: PassphraseAsker): PassphraseAsker {
    return (prompt, attempt) =>
      new Promise<Buffer | null>((resolve) => {
        const withdraw = new AbortController();
        let settled = false;
        const settle = (answer: Buffer | null): void => {
          if (settled) {
            answer?.fill(0);
            return;
          }
          settled = true;
          if (this.waiting.get(name) === offer) this.waiting.delete(name);
          resolve(answer);
        };
        const offer = (answer: Buffer): void => {
          settle(answer);
          withdraw.abort();
        };
        this.waiting.set(name, offer);
        ask(prompt, attempt, withdraw.signal).then(settle, () => settle(null));
      });
  }

  /**
   * `tsagent unlock-key NAME`: one passphrase, one attempt. The passphrase is zeroed. While a
   * signature waits for this key's passphrase, it answers that question instead and resolves
   * when that decryption ends (a wrong answer there counts as one of its three attempts).
   */
  async unlockWith(name: string, passphrase: Buffer): Promise<void> {
    const offer = this.waiting.get(name);
    const running = this.pending.get(name);
    if (offer !== undefined && running !== undefined) {
      offer(Buffer.from(passphrase));
      passphrase.fill(0);
      await running;
      return;
    }
    let given = false;
    try {
      await this.unlockAsking(
        name,
        async () => {
          if (given) return null;
          given = true;
          return passphrase;
        },
        1,
      );
    } finally {
      passphrase.fill(0);
    }
  }

  /**
   * The decrypted key body, not kept here: for an integration that holds registered keys in
   * the keyring itself. The caller zeroes the body's secret fields once imported.
   */
  async loadPrivate(name: string, ask: PassphraseAsker): Promise<PrivateKeyBody> {
    const k = this.requireKey(name);
    const body = await readPrivate(k, ask, PASSPHRASE_ATTEMPTS);
    checkMatching(k, importPrivateKey(body));
    return body;
  }

  drop(name: string): void {
    const u = this.unlocked.get(name);
    if (u === undefined) return;
    if (u.timer !== undefined) clearTimeout(u.timer);
    this.unlocked.delete(name);
    this.keyRelease().released();
  }

  /**
   * After a reload: keeps the decrypted halves of keys that are still registered from the
   * same file with the same public key (their expiry unchanged), so a reload asks for no
   * passphrase again; `previous` is left empty.
   */
  adoptFrom(previous: RegisteredKeys): void {
    for (const k of this.keys) {
      const old = previous.byFp.get(k.fingerprint);
      const u = old === undefined ? undefined : previous.unlocked.get(old.name);
      if (old === undefined || u === undefined || old.file !== k.file) continue;
      const moved: Unlocked = {
        key: u.key,
        expiresAt: k.spec.unlockForSeconds > 0 ? (u.expiresAt ?? Date.now() + k.spec.unlockForSeconds * 1000) : null,
        timer: undefined,
      };
      this.unlocked.set(k.name, moved);
      if (moved.expiresAt !== null) this.arm(k.name, moved);
    }
    previous.dropAll();
  }

  /** Lock (ssh-add -x), ssh-add -D, stop: every decrypted half goes at once (POLICY.md §3). */
  dropAll(): void {
    this.generation++;
    for (const name of [...this.unlocked.keys()]) this.drop(name);
  }

  private requireKey(name: string): RegisteredKey {
    const k = this.byNameMap.get(name);
    if (k === undefined) throw new KeyFileError('no registered key has this name', name);
    return k;
  }

  private keep(k: RegisteredKey, key: HeldKey): void {
    this.drop(k.name);
    const seconds = k.spec.unlockForSeconds;
    const u: Unlocked = { key, expiresAt: seconds > 0 ? Date.now() + seconds * 1000 : null, timer: undefined };
    this.unlocked.set(k.name, u);
    if (u.expiresAt !== null) this.arm(k.name, u);
  }

  private arm(name: string, u: Unlocked): void {
    const ms = Math.min(MAX_TIMER_MS, Math.max(0, (u.expiresAt ?? 0) - Date.now()));
    u.timer = setTimeout(() => {
      if (this.unlocked.get(name) !== u) return;
      if ((u.expiresAt ?? 0) > Date.now()) this.arm(name, u);
      else this.drop(name);
    }, ms);
    u.timer.unref();
  }
}

function readKeyFile(file: string, uid: number | undefined): Buffer {
  const got = readBounded(file, KEY_FILE_MAX_BYTES);
  if (!got.ok) throw new KeyFileError(describeProblem(got.problem), file);
  const { stat } = got.file;
  // ssh (sshkey_perm_ok) refuses a private key its owner lets others read.
  if ((stat.mode & 0o077) !== 0 && (uid === undefined || stat.uid === uid)) {
    got.file.data.fill(0);
    throw new KeyFileError(
      `permissions ${(stat.mode & 0o777).toString(8).padStart(4, '0')} are too open: a private key must not be accessible by others (chmod 600 it)`,
      file,
    );
  }
  return got.file.data;
}

function readPub(file: string): { readonly blob: Buffer; readonly comment: string } | undefined {
  const got = readBounded(`${file}.pub`, KEY_FILE_MAX_BYTES);
  if (!got.ok) return undefined;
  return parsePublicLine(got.file.data.toString('utf8'));
}

const SUPPORTED = new Set(['ed25519', 'rsa', 'ecdsa']);

function registerFile(spec: KeySpec, file: string, uid: number | undefined): RegisteredKey {
  const data = readKeyFile(file, uid);
  try {
    const header = openSshKeyHeader(data.toString('latin1'));
    const pub = readPub(file);
    let blob = header?.blob ?? pub?.blob;
    if (blob === undefined) {
      // A PEM file without .pub: only an unencrypted one can show its public half.
      blob = publicFromUnencrypted(data, file);
    }
    if (pub !== undefined && header !== undefined && !pub.blob.equals(header.blob)) {
      throw new KeyFileError(`${file}.pub does not hold this key's public half`, file);
    }
    let parsed;
    try {
      parsed = parsePublicKeyBlob(blob);
    } catch {
      throw new KeyFileError('holds a public key this agent cannot read', file);
    }
    if (!SUPPORTED.has(parsed.kind)) throw new KeyFileError(`unsupported key type ${parsed.type}`, file);
    const comment = pub?.comment ?? '';
    const fp = fingerprintOf(blob);
    const name = spec.name ?? (comment !== '' ? comment : basename(file));
    return {
      spec,
      file,
      name,
      blob,
      fingerprint: fp,
      type: parsed.type,
      comment,
      view: { blob, fingerprint: fp, comment, type: parsed.type, name, source: 'config', confirm: spec.confirm },
    };
  } finally {
    data.fill(0);
  }
}

function publicFromUnencrypted(data: Buffer, file: string): Buffer {
  let body: PrivateKeyBody;
  try {
    body = parsePrivateKeyFile(data).body;
  } catch (err) {
    if (err instanceof UnsupportedKeyError) throw new KeyFileError(err.message, file);
    throw new KeyFileError(
      `not in OpenSSH's format and ${file}.pub is missing: cannot tell its public key without the passphrase`,
      file,
    );
  }
  try {
    return importPrivateKey(body).publicBlob;
  } catch (err) {
    throw new KeyFileError(err instanceof UnsupportedKeyError ? err.message : 'not a usable private key', file);
  } finally {
    zeroBody(body);
  }
}

/** Reads the file again (it may have been fixed or replaced since load) and decrypts it off the event loop. */
async function readPrivate(k: RegisteredKey, ask: PassphraseAsker, attempts: number): Promise<PrivateKeyBody> {
  const data = readKeyFile(k.file, typeof process.getuid === 'function' ? process.getuid() : undefined);
  try {
    const first = await parsePrivateKeyInWorker(data, null, k.file);
    if (first.ok) return first.body;
    if (first.kind !== 'encrypted') throw outcomeError(first, k.file);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const pass = await ask(passphrasePrompt(k), attempt);
      if (pass === null) throw new KeyFileError('no passphrase given', k.file);
      let got;
      try {
        got = await parsePrivateKeyInWorker(data, pass, k.file);
      } finally {
        pass.fill(0);
      }
      if (got.ok) return got.body;
      if (got.kind === 'unsupported') throw outcomeError(got, k.file);
      // Otherwise a wrong passphrase (or a damaged file): ask again.
    }
    throw new KeyFileError(attempts === 1 ? 'wrong passphrase' : `wrong passphrase (${attempts} attempts)`, k.file);
  } finally {
    data.fill(0);
  }
}

function outcomeError(o: { readonly kind: string; readonly message: string }, file: string): KeyFileError {
  return new KeyFileError(o.kind === 'unsupported' ? o.message : 'not a private key this agent can read', file);
}

function asKeyFileError(err: unknown, file: string): KeyFileError {
  if (err instanceof KeyFileError) return err;
  if (err instanceof UnsupportedKeyError) return new KeyFileError(err.message, file);
  return new KeyFileError('not a private key this agent can read', file);
}

function checkMatching(k: RegisteredKey, held: HeldKey): void {
  if (!held.publicBlob.equals(k.blob)) {
    throw new KeyFileError('the private key no longer matches the public key registered at load (run tsagent reload)', k.file);
  }
}

function importMatching(k: RegisteredKey, body: PrivateKeyBody): HeldKey {
  try {
    const held = importPrivateKey(body);
    checkMatching(k, held);
    return held;
  } catch (err) {
    throw asKeyFileError(err, k.file);
  } finally {
    zeroBody(body);
  }
}

/** Overwrites the secret fields of a body that is no longer needed. */
export function zeroBody(body: PrivateKeyBody): void {
  switch (body.kind) {
    case 'ed25519':
    case 'ed25519-cert':
      body.secret.fill(0);
      break;
    case 'rsa':
    case 'rsa-cert':
      body.d.fill(0);
      body.p.fill(0);
      body.q.fill(0);
      body.iqmp.fill(0);
      break;
    case 'ecdsa':
    case 'ecdsa-cert':
      body.d.fill(0);
      break;
  }
}
