/**
 * The in-memory key store: the daemon's Agent. Identities are keyed by their exact public
 * blob (a certificate and its plain key are two identities) and listed in insertion order;
 * re-adding a held key replaces its comment and constraints in place (OpenSSH
 * process_add_identity). No sockets here: the server and tests call it directly.
 */
import type { Logger } from 'pino';
import {
  AgentFailureError,
  AgentLockedError,
  ConfirmDeniedError,
  ConstraintError,
  ExtensionFailureError,
  KeyNotFoundError,
} from '../errors';
import { fingerprint } from '../keys/fingerprint';
import type { FingerprintHash } from '../keys/fingerprint';
import type { HeldKey, KeyInfo } from '../keys/held-key';
import { importPrivateKey } from '../keys/import-private';
import { Signer } from '../keys/sign';
import type { Constraint } from '../protocol/constraints';
import { SUCCESS } from '../protocol/messages';
import type { Identity, Request, Response } from '../protocol/messages';
import { SESSION_BIND } from '../protocol/session-bind';
import type { AddIdentityOptions, Agent, ExtensionResult, RequestContext, SyncAnswering } from './agent';
import { askpassConfirmer } from './confirm';
import type { Confirmer } from './confirm';
import { destinationRules, identityPermitted, restrictedSignAllowed } from './destination-policy';
import type { DestinationRule } from './destination-policy';
import { handleExtension } from './extensions';
import { KeyRelease } from './key-release';
import { sealPrivateKey, unsealPrivateKey } from './key-sealing';
import { PassphraseLock } from './passphrase-lock';

export interface KeyringOptions {
  /** `tsagent start -t`: lifetime for keys added without one (seconds; 0 = none). */
  readonly defaultLifetimeSeconds?: number;
  /** Asks the user before each signature with a confirm-constrained key. */
  readonly confirmer?: Confirmer;
  /** Fingerprint hash for prompts and logs (`-E`). */
  readonly fingerprintHash?: FingerprintHash;
  readonly logger?: Logger;
}

interface Entry {
  /** Public facts about the key; kept while locked. */
  readonly info: KeyInfo;
  /** The usable key; undefined while the agent is locked (then `sealed` holds it). */
  held: HeldKey | undefined;
  /** The private key encrypted under the lock passphrase's sealing key, while locked. */
  sealed: Buffer | undefined;
  readonly comment: string;
  readonly confirm: boolean;
  /** Destination constraints (`ssh-add -h`); empty: usable anywhere. */
  readonly rules: readonly DestinationRule[];
  /** Monotonic deadline (performance.now() ms), or undefined for no lifetime. */
  readonly expiresAt: number | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** setTimeout's ceiling (2^31-1 ms, ~24.8 days): longer lifetimes re-arm. */
const MAX_TIMER_MS = 0x7fffffff;

/** Blobs are binary; latin1 maps each byte to one UTF-16 unit, so it is a faithful Map key. */
const blobKey = (blob: Uint8Array): string => Buffer.from(blob.buffer, blob.byteOffset, blob.length).toString('latin1');

/** A HeldKey without its private half: what an entry keeps about a key while locked. */
function publicPart(k: HeldKey): KeyInfo {
  const { privateKey: _omit, ...info } = k;
  void _omit;
  return info;
}

interface ParsedConstraints {
  readonly lifetimeSeconds: number | undefined;
  readonly confirm: boolean;
  readonly rules: readonly DestinationRule[];
}

function parseConstraints(constraints: readonly Constraint[]): ParsedConstraints {
  let lifetimeSeconds: number | undefined;
  let confirm = false;
  let rules: readonly DestinationRule[] = [];
  let restricted = false;
  for (const c of constraints) {
    switch (c.type) {
      case 'lifetime':
        if (lifetimeSeconds !== undefined) throw new ConstraintError('duplicate lifetime constraint');
        lifetimeSeconds = c.seconds;
        break;
      case 'confirm':
        if (confirm) throw new ConstraintError('duplicate confirm constraint');
        confirm = true;
        break;
      case 'restrict-destination':
        if (restricted) throw new ConstraintError('duplicate destination constraint');
        restricted = true;
        rules = destinationRules(c.constraints);
        break;
      case 'associated-certs':
        throw new ConstraintError('associated certificates apply to smartcard keys only');
      case 'sk-provider':
        throw new ConstraintError('security key providers are not supported');
    }
  }
  return { lifetimeSeconds, confirm, rules };
}

export class Keyring implements Agent, SyncAnswering {
  private readonly entries = new Map<string, Entry>();
  private readonly passphraseLock = new PassphraseLock();
  private readonly confirmer: Confirmer;
  private readonly hash: FingerprintHash;
  private readonly signer = new Signer();
  /** Has OpenSSL free (and wipe) the keys this keyring drops (README "What is in memory"). */
  private readonly keyRelease: KeyRelease;
  private identities: Identity[] | undefined;
  /** How many held keys carry destination constraints (lists must then be filtered). */
  private restricted = 0;

  constructor(private readonly options: KeyringOptions = {}) {
    this.confirmer = options.confirmer ?? askpassConfirmer();
    this.hash = options.fingerprintHash ?? 'sha256';
    this.keyRelease = new KeyRelease(options.logger);
  }

  get locked(): boolean {
    return this.passphraseLock.locked;
  }

  get size(): number {
    return this.entries.size;
  }

  async list(ctx?: RequestContext): Promise<Identity[]> {
    return this.listSync(ctx);
  }

  /**
   * The identity list, cached until the keyring changes (listing is the hottest request).
   * Keys whose destination constraints do not permit this connection's path are hidden.
   */
  listSync(ctx?: RequestContext): Identity[] {
    if (this.locked) return [];
    if (this.restricted > 0) {
      const out: Identity[] = [];
      for (const e of this.entries.values()) {
        if (identityPermitted(e.rules, ctx?.session)) out.push({ blob: e.info.publicBlob, comment: e.comment });
      }
      return out;
    }
    if (this.identities === undefined) {
      this.identities = Array.from(this.entries.values(), (e) => ({ blob: e.info.publicBlob, comment: e.comment }));
    }
    return this.identities;
  }

  /**
   * The hot path (see SyncAnswering): a list with no destination-constrained keys held, or a
   * signature by an unconstrained key that can sign inline. Anything else — locked, unknown
   * or expired key, confirm, restrictions, thread-pool signatures, errors — takes the
   * asynchronous path, which answers (and logs) the same way.
   */
  answerSync(req: Request, ctx: RequestContext): Response | undefined {
    if (this.locked) return undefined;
    if (req.type === 'request-identities') {
      return this.restricted === 0 ? { type: 'identities', identities: this.listSync(ctx) } : undefined;
    }
    if (req.type !== 'sign') return undefined;
    const entry = this.entries.get(blobKey(req.keyBlob));
    if (entry === undefined || entry.held === undefined || entry.confirm || entry.rules.length > 0) return undefined;
    if (entry.expiresAt !== undefined && performance.now() >= entry.expiresAt) return undefined;
    try {
      const signature = this.signer.signInline(entry.held, req.data, req.flags);
      return signature === undefined ? undefined : { type: 'sign-response', signature };
    } catch {
      return undefined;
    }
  }

  async sign(keyBlob: Buffer, data: Buffer, flags = 0, ctx?: RequestContext): Promise<Buffer> {
    if (this.locked) throw new AgentLockedError('agent is locked');
    const entry = this.lookup(keyBlob);
    let extra: string | undefined;
    if (entry.rules.length > 0) {
      extra = restrictedSignAllowed(entry.rules, ctx?.session, keyBlob, data);
      if (extra === undefined) throw new AgentFailureError('destination-constrained key may not sign this here');
    }
    if (entry.confirm) {
      const fp = fingerprint(entry.info.publicBlob, this.hash);
      const ok = await this.confirmer(extra === undefined ? { comment: entry.comment, fingerprint: fp } : { comment: entry.comment, fingerprint: fp, extra });
      this.options.logger?.debug({ conn: ctx?.connectionId, fingerprint: fp, approved: ok }, 'confirm');
      if (!ok) throw new ConfirmDeniedError('user refused to confirm the signature');
      // The world may have moved on while the prompt was open.
      if (this.locked) throw new AgentLockedError('agent is locked');
      this.lookup(keyBlob);
    }
    // Locked meanwhile (the key was sealed while a prompt or a request was pending).
    if (entry.held === undefined) throw new AgentLockedError('agent is locked');
    return this.signer.sign(entry.held, data, flags);
  }

  async add(identity: AddIdentityOptions, ctx?: RequestContext): Promise<void> {
    if (this.locked) throw new AgentLockedError('agent is locked');
    const parsed = parseConstraints(identity.constraints ?? []);
    const key = importPrivateKey(identity.key);
    const lifetime = parsed.lifetimeSeconds ?? (this.options.defaultLifetimeSeconds || undefined);
    const k = blobKey(key.publicBlob);
    const previous = this.entries.get(k);
    // A key hidden from this connection cannot be updated through it either.
    if (previous !== undefined && !identityPermitted(previous.rules, ctx?.session)) {
      throw new AgentFailureError('identity not visible on this connection');
    }
    if (previous?.timer !== undefined) clearTimeout(previous.timer);
    // Keep the KeyObject already built for a re-added key: same key, same blob.
    const held = previous?.held ?? key;
    if (held !== key) this.keyRelease.released();
    const entry: Entry = {
      info: previous?.info ?? publicPart(key),
      held,
      sealed: undefined,
      comment: identity.comment,
      confirm: parsed.confirm,
      rules: parsed.rules,
      expiresAt: lifetime === undefined ? undefined : performance.now() + lifetime * 1000,
      timer: undefined,
    };
    if (previous !== undefined && previous.rules.length > 0) this.restricted--;
    if (entry.rules.length > 0) this.restricted++;
    this.entries.set(k, entry);
    this.identities = undefined;
    this.armExpiry(k, entry);
    this.options.logger?.debug(
      {
        conn: ctx?.connectionId,
        type: key.type,
        fingerprint: fingerprint(key.publicBlob, this.hash),
        lifetime,
        confirm: parsed.confirm,
        destinations: parsed.rules.length,
      },
      previous ? 'identity replaced' : 'identity added',
    );
  }

  async remove(keyBlob: Buffer, ctx?: RequestContext): Promise<void> {
    if (this.locked) throw new AgentLockedError('agent is locked');
    const entry = this.lookup(keyBlob);
    if (!identityPermitted(entry.rules, ctx?.session)) throw new KeyNotFoundError('identity not visible on this connection');
    this.delete(blobKey(keyBlob));
  }

  async removeAll(): Promise<void> {
    if (this.locked) throw new AgentLockedError('agent is locked');
    this.clear();
  }

  /** Drops every key regardless of the lock (SIGUSR1, shutdown). */
  clear(): void {
    for (const e of this.entries.values()) {
      if (e.timer !== undefined) clearTimeout(e.timer);
      e.sealed?.fill(0);
    }
    this.entries.clear();
    this.identities = undefined;
    this.restricted = 0;
    this.keyRelease.released();
  }

  /**
   * Locks the agent and seals every private key under a key derived from the passphrase:
   * while locked the keyring holds no KeyObject, only sealed boxes and public facts.
   */
  async lock(passphrase: Buffer): Promise<void> {
    const wasLocked = this.locked;
    const sealingKey = await this.passphraseLock.lock(passphrase);
    if (sealingKey === undefined) throw new AgentFailureError(wasLocked ? 'agent is already locked' : 'empty passphrase');
    try {
      for (const e of this.entries.values()) {
        if (e.held === undefined) continue;
        e.sealed = sealPrivateKey(e.held.privateKey, sealingKey);
        e.held = undefined;
      }
    } finally {
      sealingKey.fill(0);
    }
    this.keyRelease.released();
  }

  /** Unlocks with the right passphrase and unseals the keys; a wrong one restores nothing. */
  async unlock(passphrase: Buffer): Promise<void> {
    const result = await this.passphraseLock.unlock(passphrase);
    if (result.outcome !== 'unlocked') {
      throw new AgentFailureError(result.outcome === 'not-locked' ? 'agent is not locked' : 'wrong passphrase');
    }
    const { sealingKey } = result;
    try {
      for (const [k, e] of this.entries) {
        if (e.sealed === undefined) continue;
        const privateKey = unsealPrivateKey(e.sealed, sealingKey);
        e.sealed.fill(0);
        e.sealed = undefined;
        if (privateKey === undefined) {
          // Cannot happen with the key that sealed it; never keep an unusable identity.
          this.delete(k);
          continue;
        }
        e.held = { ...e.info, privateKey };
      }
    } finally {
      sealingKey.fill(0);
    }
  }

  /**
   * What the keyring holds, for tests and audits: how many identities, how many usable
   * KeyObjects and how many sealed keys. Nothing secret.
   */
  secretsState(): { identities: number; keyObjects: number; sealed: number } {
    let keyObjects = 0;
    let sealed = 0;
    for (const e of this.entries.values()) {
      if (e.held !== undefined) keyObjects++;
      if (e.sealed !== undefined) sealed++;
    }
    return { identities: this.entries.size, keyObjects, sealed };
  }

  async extension(name: string, contents: Buffer, ctx?: RequestContext): Promise<ExtensionResult> {
    // Session binds are accepted while locked (OpenSSH >= 10.x), so forwarded channels
    // opened meanwhile are bound once the agent is unlocked.
    if (name === SESSION_BIND) {
      if (ctx?.session === undefined) throw new ExtensionFailureError('no connection to bind');
      ctx.session.bind(contents);
      return SUCCESS;
    }
    if (this.locked) throw new AgentLockedError('agent is locked');
    return handleExtension(name, contents);
  }

  /** The entry for an exact blob, dropping it first if its lifetime ran out. */
  private lookup(blob: Buffer): Entry {
    const k = blobKey(blob);
    const entry = this.entries.get(k);
    if (entry === undefined) throw new KeyNotFoundError('no such identity');
    if (entry.expiresAt !== undefined && performance.now() >= entry.expiresAt) {
      this.delete(k);
      throw new KeyNotFoundError('identity expired');
    }
    return entry;
  }

  private delete(k: string): void {
    const e = this.entries.get(k);
    if (e === undefined) return;
    if (e.timer !== undefined) clearTimeout(e.timer);
    e.sealed?.fill(0);
    if (e.rules.length > 0) this.restricted--;
    this.entries.delete(k);
    this.identities = undefined;
    this.keyRelease.released();
  }

  private armExpiry(k: string, entry: Entry): void {
    if (entry.expiresAt === undefined) return;
    const wait = Math.max(0, Math.min(entry.expiresAt - performance.now(), MAX_TIMER_MS));
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (this.entries.get(k) !== entry) return;
      if (performance.now() >= entry.expiresAt!) {
        this.delete(k);
        this.options.logger?.debug({ fingerprint: fingerprint(entry.info.publicBlob, this.hash) }, 'identity expired');
      } else {
        this.armExpiry(k, entry);
      }
    }, wait);
    // An expiry timer alone must not keep a process (or a test) alive.
    entry.timer.unref();
  }
}
