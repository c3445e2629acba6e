/**
 * The in-memory key store: the daemon's Agent. Identities are keyed by their exact public
 * blob (a certificate and its plain key are two identities) and listed in insertion order;
 * re-adding a held key replaces its comment and constraints in place (OpenSSH
 * process_add_identity). No sockets here: the server and tests call it directly.
 */
import type { Logger } from '../log';
import {
  AgentError,
  AgentFailureError,
  AgentLockedError,
  ConstraintError,
  ExtensionFailureError,
  KeyNotFoundError,
} from '../errors';
import { fingerprint } from '../keys/fingerprint';
import type { FingerprintHash } from '../keys/fingerprint';
import type { HeldKey, KeyInfo } from '../keys/held-key';
import { importPrivateKey } from '../keys/import-private';
import { Signer } from '../keys/sign';
import { SignatureVerifier } from '../keys/verify';
import type { Constraint } from '../protocol/constraints';
import { SUCCESS } from '../protocol/messages';
import type { Identity, Request, Response } from '../protocol/messages';
import { SESSION_BIND } from '../protocol/session-bind';
import type { AddIdentityOptions, Agent, ExtensionResult, SmartcardAddOptions, SyncAnswering } from './agent';
import { askpassConfirmer } from './confirm';
import type { Confirmer } from './confirm';
import { destinationRules, identityPermitted } from './destination-policy';
import type { DestinationRule } from './destination-policy';
import { refusalReply } from './dispatcher';
import { handleExtension } from './extensions';
import { Gate, REFUSE_CONFIRM_DENIED, REFUSE_LOCKED, auditDecisionOf, refusalError } from './gate';
import type { AskFirst, GateKey, Refusal } from './gate';
import { KeyRelease } from './key-release';
import { sealPrivateKey, unsealPrivateKey } from './key-sealing';
import { PassphraseLock } from './passphrase-lock';
import type { ApprovalPort, AuditEventName, AuditSink, KeyView, PolicyPort } from './ports';
import type { PassphraseAsker, RegisteredKeySource, RegisteredKeyView } from './registered';
import { AgentSession } from './session';
// [pkcs11] smartcard keys (issue 15)
import { publicKeyInfo } from '../keys/public-info';
import { ProviderTable, smartcardConstraints, smartcardIdentities } from './smartcard';
import type { LoadedProvider, SmartcardPort } from './smartcard';
import type { BackoffSleep } from './passphrase-lock';

export interface KeyringOptions {
  /** `tsagent start -t`: lifetime for keys added without one (seconds; 0 = none). */
  readonly defaultLifetimeSeconds?: number;
  /** Asks the user before each signature with a confirm-constrained key. */
  readonly confirmer?: Confirmer;
  /** Fingerprint hash for prompts and logs (`-E`). */
  readonly fingerprintHash?: FingerprintHash;
  readonly logger?: Logger;
  /** Decides lists and signatures beyond OpenSSH's rules (POLICY.md §2); absent: none. */
  readonly policy?: PolicyPort;
  /** Asks the user for `confirm` verdicts (POLICY.md §4); absent: the Confirmer. */
  readonly approvals?: ApprovalPort;
  /** Records every decision (POLICY.md §6); absent: nothing recorded. */
  readonly audit?: AuditSink;
  /** [pkcs11] Loads PKCS#11 providers (`ssh-add -s`); absent: smartcard requests fail. */
  readonly smartcards?: SmartcardPort;
  /** How a wrong unlock's back-off waits (tests step through it); default: a timer. */
  readonly unlockBackoff?: BackoffSleep;
  /** Runs after the keyring has had dropped private keys collected (the daemon: malloc_trim). */
  readonly afterCollect?: () => void;
}

interface Entry extends GateKey {
  /** Changes when [[key]] settings are reloaded, or a registered key is added with ssh-add. */
  view: KeyView;
  rules: readonly DestinationRule[];
  expiresAt: number | undefined;
  /** Public facts about the key; kept while locked. */
  readonly info: KeyInfo;
  /**
   * The usable key; undefined while the agent is locked (then `sealed` holds it), and for a
   * registered key unless it was also added with ssh-add (its decrypted half lives in the
   * RegisteredKeySource).
   */
  held: HeldKey | undefined;
  /** The private key encrypted under the lock passphrase's sealing key, while locked. */
  sealed: Buffer | undefined;
  timer: NodeJS.Timeout | undefined;
  /** A registered key (POLICY.md §3): listed while its private half is not loaded. */
  registered: RegisteredKeyView | undefined;
  /** The `ssh-add -c` flag as added (view.confirm may add the config's). */
  addedConfirm: boolean;
  /** Date.now() of the last signature, for `tsagent keys`. */
  lastUsed: number | undefined;
  /** [pkcs11] A smartcard key (view.source "pkcs11"): signed by its provider, never held here. */
  readonly external?: { readonly provider: LoadedProvider; readonly signingBlob: Buffer };
}

/** A confirm question in progress, withdrawn when its key goes or the agent locks. */
interface PendingAsk {
  readonly entry: Entry;
  readonly controller: AbortController;
}

/** What `tsagent keys` shows of a key beyond its view (POLICY.md §5). */
export interface KeyFacts {
  readonly view: KeyView;
  /** The private half is in memory (sealed while locked counts; a registered key not yet decrypted does not). */
  readonly loaded: boolean;
  /** Seconds until the key (or a registered key's decrypted half) is dropped; null: no limit. */
  readonly lifetimeLeft: number | null;
  /** ISO time of the last signature, or null. */
  readonly lastUsed: string | null;
}

const NO_ASKER: PassphraseAsker = () => Promise.resolve(null);

/** Locked: the list reply is this one array, so its encoded frame is cached like any other. */
const NO_IDENTITIES: Identity[] = [];

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
  private readonly passphraseLock: PassphraseLock;
  private readonly gate: Gate;
  private readonly hash: FingerprintHash;
  private readonly signer = new Signer();
  /**
   * Host keys of session-bind imported once (a user binds to the same few hosts), and binds
   * verified once (`ssh -A` binds each forwarded channel with the same signature).
   */
  private readonly bindVerifier = new SignatureVerifier();
  /** Has OpenSSL free (and wipe) the keys this keyring drops (README "What is in memory"). */
  private readonly keyRelease: KeyRelease;
  /** Every key's view in insertion order, and the list reply built from it: cached until the keyring changes. */
  private views: KeyView[] | undefined;
  private identities: Identity[] | undefined;
  /** How many held keys carry destination constraints (lists must then be filtered). */
  private restricted = 0;
  private readonly pendingAsks = new Set<PendingAsk>();
  /** [pkcs11] Loaded providers and how many identities each backs. */
  private readonly providers = new ProviderTable();
  /** Registered keys (POLICY.md §3) and how to ask their passphrases; set by setRegistered. */
  private registeredSource: RegisteredKeySource | undefined;
  private asker: PassphraseAsker = NO_ASKER;

  constructor(private readonly options: KeyringOptions = {}) {
    this.passphraseLock = new PassphraseLock(options.unlockBackoff);
    this.hash = options.fingerprintHash ?? 'sha256';
    this.keyRelease = new KeyRelease(options.logger, options.afterCollect);
    this.gate = new Gate({
      policy: options.policy,
      approvals: options.approvals,
      audit: options.audit,
      confirmer: options.confirmer ?? askpassConfirmer(),
      fingerprintHash: this.hash,
    });
  }

  get locked(): boolean {
    return this.passphraseLock.locked;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Every key's public view, in insertion order, unfiltered (for `tsagent keys`; no audit record). */
  keyViews(): readonly KeyView[] {
    if (this.views === undefined) this.views = Array.from(this.entries.values(), (e) => e.view);
    return this.views;
  }

  async list(session: AgentSession): Promise<Identity[]> {
    return this.listFor(session);
  }

  /**
   * The identities `session` may see, as the gate decides. With nothing to filter this is the
   * same array until the keyring changes (listing is the hottest request; the server caches
   * the encoded reply by array).
   */
  listFor(session: AgentSession): Identity[] {
    if (this.views === undefined) this.views = Array.from(this.entries.values(), (e) => e.view);
    const all = this.views;
    const shown = this.gate.decideList(this.locked, all, this.restricted > 0 ? this.entries.values() : undefined, session);
    if (shown === all) {
      if (this.identities === undefined) this.identities = all.map((v) => ({ blob: v.blob, comment: v.comment }));
      return this.identities;
    }
    return shown.length === 0 ? NO_IDENTITIES : shown.map((v) => ({ blob: v.blob, comment: v.comment }));
  }

  /**
   * The hot path (see SyncAnswering): every list, every refused signature, and signatures the
   * gate allows without a question that can be made inline. A question, a thread-pool
   * signature or a key not loaded takes the asynchronous path, which asks the gate again.
   */
  answerSync(req: Request, session: AgentSession): Response | undefined {
    try {
      if (req.type === 'request-identities') return { type: 'identities', identities: this.listFor(session) };
      if (req.type === 'extension' && req.name === SESSION_BIND) return this.bindSync(req.contents, session);
      return req.type === 'sign' ? this.signSync(req, session) : undefined;
    } catch {
      // A signing error, or a port that throws (a bug): the asynchronous path meets it again
      // and reports it.
      return undefined;
    }
  }

  /**
   * session-bind answered at once: its one signature check is synchronous (keys/verify.ts),
   * and the list `ssh` sends next is then answered in the same turn (connection.ts writes
   * both replies together when they came together). Same replies as extension().
   */
  private bindSync(contents: Buffer, session: AgentSession): Response {
    try {
      session.bindings.bind(contents, this.bindVerifier);
      return SUCCESS;
    } catch (err) {
      // Anything else is a bug: answerSync gives up and the dispatcher meets it again (one
      // more bind attempt, which fails the same way) and logs it as an internal error.
      if (!(err instanceof ExtensionFailureError)) throw err;
      return refusalReply(err, 'extension', session, this.options.logger);
    }
  }

  private signSync(req: Extract<Request, { type: 'sign' }>, session: AgentSession): Response | undefined {
    const startedAt = this.gate.auditing ? performance.now() : 0;
    const k = blobKey(req.keyBlob);
    const entry = this.entries.get(k);
    const verdict = this.gate.decideSign(this.locked, entry, session, req.keyBlob, req.data);
    if (verdict.action === 'refuse') {
      return refusalReply(this.refused(verdict, k, entry, session, req.data, startedAt), req.type, session, this.options.logger);
    }
    if (verdict.action === 'ask' || entry === undefined) return undefined;
    const held = entry.held ?? (entry.registered === undefined ? undefined : this.registeredSource?.held(entry.registered.name));
    if (held === undefined) return undefined;
    const signature = this.signer.signInline(held, req.data, req.flags);
    if (signature === undefined) return undefined;
    entry.lastUsed = Date.now();
    this.gate.recordSign(session, 'allow', verdict.reason, entry.view, req.data, verdict.question, startedAt);
    return { type: 'sign-response', signature };
  }

  async sign(keyBlob: Buffer, data: Buffer, flags: number, session: AgentSession): Promise<Buffer> {
    const startedAt = this.gate.auditing ? performance.now() : 0;
    const k = blobKey(keyBlob);
    const entry = this.entries.get(k);
    const verdict = this.gate.decideSign(this.locked, entry, session, keyBlob, data);
    if (verdict.action === 'refuse') throw this.refused(verdict, k, entry, session, data, startedAt);
    // decideSign refuses unknown keys.
    const e = entry!;
    const reason = verdict.action === 'ask' ? await this.confirm(verdict, e, k, session, data, startedAt) : verdict.reason;
    // A registered key's private half is read and decrypted now, once the gate allowed the use.
    const held =
      e.held ??
      (e.registered === undefined ? undefined : await this.decryptRegistered(e, e.registered, session, data, startedAt));
    // Locked meanwhile (the key was sealed while a prompt or a request was pending).
    if (this.locked || (held === undefined && e.external === undefined))
      throw this.refused(REFUSE_LOCKED, k, e, session, data, startedAt);
    let signature: Buffer;
    try {
      // [pkcs11] A token key is signed by its provider, in its helper process.
      signature =
        e.external !== undefined
          ? await e.external.provider.sign(e.external.signingBlob, data, flags)
          : await this.signer.sign(held!, data, flags);
    } catch (err) {
      this.gate.recordSign(session, 'fail', 'signature failed', e.view, data, verdict.question, startedAt);
      throw err;
    }
    e.lastUsed = Date.now();
    this.gate.recordSign(session, 'allow', reason, e.view, data, verdict.question, startedAt);
    return signature;
  }

  /**
   * The private half of a registered key: in memory, or read and decrypted now (in a worker
   * thread), asking the passphrase through the asker; three wrong answers fail the request.
   * Records `key-decrypted` when it decrypts.
   */
  private async decryptRegistered(
    e: Entry,
    r: RegisteredKeyView,
    session: AgentSession,
    data: Buffer,
    startedAt: number,
  ): Promise<HeldKey> {
    const source = this.registeredSource;
    const have = source?.held(r.name);
    if (have !== undefined) return have;
    if (source === undefined) throw new KeyNotFoundError('no such identity');
    try {
      const held = await source.unlock(r.name, this.asker);
      this.gate.recordChange('key-decrypted', 'allow', 'decrypted for a signature', session, e.view);
      this.options.logger?.debug(
        { conn: session.connectionId, key: r.name, fingerprint: this.fingerprintOf(e.view) },
        'registered key decrypted',
      );
      return held;
    } catch (err) {
      const reason = err instanceof Error ? err.message : 'cannot decrypt';
      this.gate.recordChange('key-decrypted', 'fail', reason, session, e.view);
      this.gate.recordSign(session, 'fail', 'key not decrypted', e.view, data, undefined, startedAt);
      throw new AgentFailureError(`registered key ${JSON.stringify(r.name)} not decrypted: ${reason}`);
    }
  }

  /**
   * `tsagent unlock-key NAME`: decrypts a registered key now with this passphrase (zeroed),
   * one attempt. Throws when locked, unknown or wrong.
   */
  async unlockRegistered(name: string, passphrase: Buffer): Promise<void> {
    const source = this.registeredSource;
    const entry = this.registeredEntry(name);
    if (this.locked || source === undefined || entry === undefined) {
      passphrase.fill(0);
      if (this.locked) throw new AgentLockedError('agent is locked');
      throw new KeyNotFoundError(`no registered key is named ${JSON.stringify(name)}`);
    }
    const session = AgentSession.inProcess();
    const had = source.held(name) !== undefined;
    try {
      await source.unlockWith(name, passphrase);
    } catch (err) {
      this.gate.recordChange('key-decrypted', 'fail', err instanceof Error ? err.message : 'cannot decrypt', session, entry.view);
      throw err;
    }
    if (!had) this.gate.recordChange('key-decrypted', 'allow', 'unlock-key', session, entry.view);
  }

  /** Asks the user about an `ask` verdict; returns the approval's reason or throws the refusal. */
  private async confirm(
    verdict: AskFirst,
    entry: Entry,
    k: string,
    session: AgentSession,
    data: Buffer,
    startedAt: number,
  ): Promise<string> {
    const pending: PendingAsk = { entry, controller: new AbortController() };
    // The question is withdrawn when the connection goes, too (not AbortSignal.any: Node 20.3+).
    const closed = session.closed;
    const withdraw = (): void => pending.controller.abort();
    if (closed.aborted) withdraw();
    else closed.addEventListener('abort', withdraw, { once: true });
    this.pendingAsks.add(pending);
    let answer;
    try {
      answer = await this.gate.ask(verdict, entry.view, session, data, pending.controller.signal);
    } finally {
      this.pendingAsks.delete(pending);
      closed.removeEventListener('abort', withdraw);
    }
    this.options.logger?.debug(
      { conn: session.connectionId, fingerprint: this.fingerprintOf(entry.view), approved: answer.allowed },
      'confirm',
    );
    if (!answer.allowed) {
      this.gate.recordSign(session, 'deny', answer.reason, entry.view, data, verdict.question, startedAt);
      throw refusalError(REFUSE_CONFIRM_DENIED);
    }
    // The world may have moved on while the question was open: ask the gate what it holds now.
    const gone = this.gate.unavailable(this.locked, this.entries.get(k));
    if (gone !== undefined) throw this.refused(gone, k, entry, session, data, startedAt);
    return answer.reason;
  }

  /** Carries out a refusal: drops an expired key, records it, and returns the error to throw. */
  private refused(
    r: Refusal,
    k: string,
    entry: Entry | undefined,
    session: AgentSession,
    data: Buffer,
    startedAt: number,
  ): AgentError {
    if (r.kind === 'expired') this.delete(k);
    this.gate.recordSign(session, auditDecisionOf(r), r.reason, entry?.view, data, undefined, startedAt);
    return refusalError(r);
  }

  async add(identity: AddIdentityOptions, session: AgentSession): Promise<void> {
    return this.recorded('add', session, () => this.addIdentity(identity, session));
  }

  private addIdentity(identity: AddIdentityOptions, session: AgentSession): { reason: string; view: KeyView } {
    if (this.locked) throw new AgentLockedError('agent is locked');
    const parsed = parseConstraints(identity.constraints ?? []);
    const key = importPrivateKey(identity.key);
    const lifetime = parsed.lifetimeSeconds ?? (this.options.defaultLifetimeSeconds || undefined);
    const k = blobKey(key.publicBlob);
    const previous = this.entries.get(k);
    // A key hidden from this connection cannot be updated through it either.
    if (previous !== undefined && !identityPermitted(previous.rules, session.bindings)) {
      throw new AgentFailureError('identity not visible on this connection');
    }
    if (previous?.timer !== undefined) clearTimeout(previous.timer);
    // Keep the KeyObject already built for a re-added key: same key, same blob.
    const held = previous?.held ?? key;
    if (held !== key) this.keyRelease.released();
    const info = previous?.info ?? publicPart(key);
    const fp = previous?.view.fingerprint ?? fingerprint(info.publicBlob);
    // A registered key added with ssh-add stays the config's key (name, source), now loaded.
    const registered = previous?.registered;
    const entry: Entry = {
      info,
      view:
        registered === undefined
          ? this.addedView(info, fp, identity.comment, parsed.confirm)
          : { ...registered.view, confirm: registered.view.confirm || parsed.confirm },
      held,
      sealed: undefined,
      rules: parsed.rules,
      expiresAt: lifetime === undefined ? undefined : performance.now() + lifetime * 1000,
      timer: undefined,
      registered,
      addedConfirm: parsed.confirm,
      lastUsed: previous?.lastUsed,
    };
    if (previous !== undefined) {
      if (previous.rules.length > 0) this.restricted--;
      this.withdrawAsks(previous);
    }
    if (entry.rules.length > 0) this.restricted++;
    this.entries.set(k, entry);
    this.changed();
    this.armExpiry(k, entry);
    // [pkcs11] A file key replacing a token key: the entry no longer needs its provider.
    if (previous?.external !== undefined) this.providers.release(previous.external.provider.path);
    this.options.logger?.debug(
      {
        conn: session.connectionId,
        type: key.type,
        fingerprint: this.fingerprintOf(entry.view),
        lifetime,
        confirm: parsed.confirm,
        destinations: parsed.rules.length,
      },
      previous ? 'identity replaced' : 'identity added',
    );
    return { reason: previous ? 'replaced' : 'added', view: entry.view };
  }

  async remove(keyBlob: Buffer, session: AgentSession): Promise<void> {
    return this.recorded('remove', session, () => {
      if (this.locked) throw new AgentLockedError('agent is locked');
      const entry = this.lookup(keyBlob);
      if (!identityPermitted(entry.rules, session.bindings))
        throw new KeyNotFoundError('identity not visible on this connection');
      this.delete(blobKey(keyBlob));
      // A registered key stays listed, its private half dropped (POLICY.md §3).
      return { reason: entry.registered === undefined ? 'removed' : 'private half dropped (registered key)', view: entry.view };
    });
  }

  async removeAll(session: AgentSession): Promise<void> {
    return this.recorded('remove-all', session, () => {
      if (this.locked) throw new AgentLockedError('agent is locked');
      this.clear();
      return { reason: 'removed all' };
    });
  }

  /**
   * Drops every key regardless of the lock (`ssh-add -D`, SIGUSR1, shutdown). Registered keys
   * stay listed with their private halves dropped (POLICY.md §3).
   */
  clear(): void {
    for (const k of [...this.entries.keys()]) this.delete(k);
    this.registeredSource?.dropAll();
    this.withdrawAsks(undefined);
    this.providers.closeAll(); // [pkcs11]
    this.keyRelease.released();
  }

  /**
   * Locks the agent and seals every private key under a key derived from the passphrase:
   * while locked the keyring holds no KeyObject, only sealed boxes and public facts.
   */
  async lock(passphrase: Buffer, session: AgentSession): Promise<void> {
    return this.recorded('lock', session, async () => {
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
      // Decrypted registered keys are not sealed but dropped: their file is their home (POLICY.md §3).
      this.registeredSource?.dropAll();
      this.keyRelease.released();
      this.withdrawAsks(undefined);
      this.options.approvals?.agentLocked?.();
      return { reason: 'locked' };
    });
  }

  /** Unlocks with the right passphrase and unseals the keys; a wrong one restores nothing. */
  async unlock(passphrase: Buffer, session: AgentSession): Promise<void> {
    return this.recorded('unlock', session, async () => {
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
      return { reason: 'unlocked' };
    });
  }

  /**
   * What the keyring holds, for tests and audits: how many identities, how many usable
   * KeyObjects and how many sealed keys. Nothing secret.
   */
  secretsState(): { identities: number; keyObjects: number; sealed: number } {
    let keyObjects = 0;
    let sealed = 0;
    for (const e of this.entries.values()) {
      if (e.held !== undefined || (e.registered !== undefined && this.registeredSource?.held(e.registered.name) !== undefined))
        keyObjects++;
      if (e.sealed !== undefined) sealed++;
    }
    return { identities: this.entries.size, keyObjects, sealed };
  }

  async extension(name: string, contents: Buffer, session: AgentSession): Promise<ExtensionResult> {
    // Session binds are accepted while locked (OpenSSH >= 10.x), so forwarded channels
    // opened meanwhile are bound once the agent is unlocked.
    if (name === SESSION_BIND) {
      session.bindings.bind(contents, this.bindVerifier);
      return SUCCESS;
    }
    if (this.locked) throw new AgentLockedError('agent is locked');
    return handleExtension(name, contents);
  }

  // ---- [pkcs11] smartcard keys (issue 15; ssh-agent.c process_add/remove_smartcard_key) ----

  /**
   * Loads a PKCS#11 provider and adds each key on its tokens (and the certificates
   * associated with them) as an identity with these constraints. Keys already held are
   * left as they are. Fails when the provider is not allowed, already added, or yields no
   * new identity (wrong PIN included).
   */
  async addSmartcardKey(opts: SmartcardAddOptions, session: AgentSession): Promise<void> {
    return this.recorded('add', session, () => this.addProvider(opts, session));
  }

  private async addProvider(opts: SmartcardAddOptions, session: AgentSession): Promise<{ reason: string }> {
    const port = this.options.smartcards;
    if (port === undefined) throw new AgentFailureError('PKCS#11 providers are not enabled');
    if (this.locked) throw new AgentLockedError('agent is locked');
    const c = smartcardConstraints(opts.constraints);
    const rules = c.destination === undefined ? [] : destinationRules(c.destination.constraints);
    if (!port.allowRemoteAdd && (session.bindings.bindAttempted || session.bindings.bindings.length > 0)) {
      throw new AgentFailureError('remote addition of providers is disabled');
    }
    const path = await port.canonicalPath(opts.provider);
    if (!port.allowed(path)) throw new AgentFailureError('provider not allowed');
    const lifetime = c.lifetimeSeconds ?? (this.options.defaultLifetimeSeconds || undefined);
    this.providers.reserve(path);
    let provider: LoadedProvider | undefined;
    let added = 0;
    try {
      provider = await port.load(path, opts.pin);
      if (this.locked) throw new AgentLockedError('agent is locked');
      const expiresAt = lifetime === undefined ? undefined : performance.now() + lifetime * 1000;
      for (const id of smartcardIdentities(provider, c)) {
        const k = blobKey(id.blob);
        if (this.entries.has(k)) continue; // OpenSSH: "XXX update constraints for existing keys"
        const info = publicKeyInfo(id.blob);
        const entry: Entry = {
          info,
          view: {
            blob: id.blob,
            fingerprint: fingerprint(id.blob),
            comment: id.comment,
            type: info.type,
            name: null,
            source: 'pkcs11',
            confirm: c.confirm,
          },
          held: undefined,
          sealed: undefined,
          rules,
          expiresAt,
          timer: undefined,
          external: { provider, signingBlob: id.signingBlob },
          registered: undefined,
          addedConfirm: c.confirm,
          lastUsed: undefined,
        };
        if (rules.length > 0) this.restricted++;
        this.entries.set(k, entry);
        this.armExpiry(k, entry);
        added++;
      }
      this.changed();
    } finally {
      this.providers.settle(path, provider, added);
    }
    if (added === 0) throw new AgentFailureError('provider yielded no new identities');
    const loaded = provider;
    loaded.onLost(() => {
      if (!this.providers.current(loaded)) return;
      this.options.logger?.warn({ provider: path }, 'PKCS#11 provider helper exited; its keys are gone');
      this.dropProvider(path);
    });
    this.options.logger?.debug(
      { conn: session.connectionId, provider: path, identities: added, lifetime, confirm: c.confirm, destinations: rules.length },
      'smartcard identities added',
    );
    return { reason: `added ${added} from PKCS#11 provider ${path}` };
  }

  /** Removes every identity of the provider and unloads it (succeeds as OpenSSH ≥ 9.4 does). */
  async removeSmartcardKey(provider: string, session: AgentSession): Promise<void> {
    return this.recorded('remove', session, async () => {
      const port = this.options.smartcards;
      if (port === undefined) throw new AgentFailureError('PKCS#11 providers are not enabled');
      if (this.locked) throw new AgentLockedError('agent is locked');
      const path = await port.canonicalPath(provider);
      const removed = this.dropProvider(path);
      this.options.logger?.debug(
        { conn: session.connectionId, provider: path, identities: removed },
        'smartcard identities removed',
      );
      return { reason: `removed ${removed} of PKCS#11 provider ${path}` };
    });
  }

  private dropProvider(path: string): number {
    let removed = 0;
    for (const [k, e] of this.entries) {
      if (e.external?.provider.path !== path) continue;
      this.delete(k);
      removed++;
    }
    this.providers.drop(path);
    return removed;
  }

  // ---- [/pkcs11] ----

  /** Runs a keyring change and records its outcome (audit `fail` carries the error's message). */
  private async recorded(
    event: AuditEventName,
    session: AgentSession,
    change: () => { reason: string; view?: KeyView } | Promise<{ reason: string; view?: KeyView }>,
  ): Promise<void> {
    let done;
    try {
      done = await change();
    } catch (err) {
      if (err instanceof AgentError) this.gate.recordChange(event, 'fail', err.message, session);
      throw err;
    }
    this.gate.recordChange(event, 'allow', done.reason, session, done.view);
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

  /**
   * Removes a key (ssh-add -d, -D, expiry). A registered key is not removed: it goes back to
   * its config form, listed with no private half (POLICY.md §3).
   */
  private delete(k: string): void {
    const e = this.entries.get(k);
    if (e === undefined) return;
    if (e.timer !== undefined) clearTimeout(e.timer);
    e.timer = undefined;
    e.sealed?.fill(0);
    if (e.rules.length > 0) this.restricted--;
    if (e.registered !== undefined) {
      this.registeredSource?.drop(e.registered.name);
      this.toRegistered(e, e.registered);
    } else {
      this.entries.delete(k);
    }
    this.changed();
    this.withdrawAsks(e);
    this.options.approvals?.keyGone?.(e.view.fingerprint);
    if (e.external !== undefined) this.providers.release(e.external.provider.path); // [pkcs11]
    this.keyRelease.released();
  }

  /** Makes `e` the plain registered key `r`: the config's view, no private half, no constraints. */
  private toRegistered(e: Entry, r: RegisteredKeyView): void {
    e.sealed?.fill(0);
    e.sealed = undefined;
    e.held = undefined;
    e.view = r.view;
    e.registered = r;
    e.rules = [];
    e.expiresAt = undefined;
    e.addedConfirm = false;
  }

  /** An ssh-add key's view: `[[key]] fingerprint=` settings give its name and confirm (POLICY.md §2). */
  private addedView(info: KeyInfo, fp: string, comment: string, confirm: boolean): KeyView {
    const settings = this.registeredSource?.addedKeySettings(fp);
    return {
      blob: info.publicBlob,
      fingerprint: fp,
      comment,
      type: info.type,
      name: settings?.name ?? null,
      source: 'added',
      confirm: confirm || settings?.confirm === true,
    };
  }

  private registeredEntry(name: string): Entry | undefined {
    for (const e of this.entries.values()) if (e.registered?.name === name) return e;
    return undefined;
  }

  /**
   * Registers the config's keys (start, reload): listed first, in config order, before keys
   * added with ssh-add (they were "added" when the agent started). Keys no longer registered
   * go, unless ssh-add also added them; `[[key]] fingerprint=` settings are re-applied to
   * added keys. `asker` asks passphrases for signatures (askpass).
   */
  setRegistered(source: RegisteredKeySource | undefined, asker?: PassphraseAsker): void {
    this.registeredSource = source;
    this.asker = asker ?? NO_ASKER;
    const next = new Map<string, Entry>();
    for (const r of source?.list() ?? []) {
      const k = blobKey(r.view.blob);
      const e = this.entries.get(k);
      if (e === undefined) {
        next.set(k, {
          info: publicKeyInfo(r.view.blob),
          view: r.view,
          held: undefined,
          sealed: undefined,
          rules: [],
          expiresAt: undefined,
          timer: undefined,
          registered: r,
          addedConfirm: false,
          lastUsed: undefined,
        });
        continue;
      }
      e.registered = r;
      if (e.held === undefined && e.sealed === undefined && e.external === undefined) this.toRegistered(e, r);
      else e.view = { ...r.view, confirm: r.view.confirm || e.addedConfirm };
      next.set(k, e);
    }
    const gone: Entry[] = [];
    for (const [k, e] of this.entries) {
      if (next.has(k)) continue;
      if (e.registered !== undefined) {
        e.registered = undefined;
        // No longer registered and never added with ssh-add: it goes.
        if (e.held === undefined && e.sealed === undefined) {
          if (e.timer !== undefined) clearTimeout(e.timer);
          gone.push(e);
          continue;
        }
      }
      if (e.external === undefined) e.view = this.addedView(e.info, e.view.fingerprint, e.view.comment, e.addedConfirm);
      next.set(k, e);
    }
    this.entries.clear();
    for (const [k, e] of next) this.entries.set(k, e);
    this.changed();
    for (const e of gone) {
      this.withdrawAsks(e);
      this.options.approvals?.keyGone?.(e.view.fingerprint);
    }
  }

  /** Every key with what `tsagent keys` shows of it (POLICY.md §5), in list order. No audit record. */
  keyFacts(): KeyFacts[] {
    const now = performance.now();
    const out: KeyFacts[] = [];
    for (const e of this.entries.values()) {
      const name = e.registered?.name;
      const decrypted = name !== undefined && this.registeredSource?.held(name) !== undefined;
      const lifetimeLeft =
        e.expiresAt !== undefined
          ? Math.max(0, Math.ceil((e.expiresAt - now) / 1000))
          : name === undefined
            ? null
            : (this.registeredSource?.lifetimeLeft(name) ?? null);
      out.push({
        view: e.view,
        loaded: e.held !== undefined || e.sealed !== undefined || e.external !== undefined || decrypted,
        lifetimeLeft,
        lastUsed: e.lastUsed === undefined ? null : new Date(e.lastUsed).toISOString(),
      });
    }
    return out;
  }

  /** A key's fingerprint in the `-E` hash, for logs (KeyView's is always SHA256). */
  private fingerprintOf(view: KeyView): string {
    return this.hash === 'sha256' ? view.fingerprint : fingerprint(view.blob, this.hash);
  }

  private changed(): void {
    this.views = undefined;
    this.identities = undefined;
  }

  /** Withdraws the open questions about `entry` (undefined: every one), e.g. on lock. */
  private withdrawAsks(entry: Entry | undefined): void {
    for (const p of this.pendingAsks) if (entry === undefined || p.entry === entry) p.controller.abort();
  }

  private armExpiry(k: string, entry: Entry): void {
    if (entry.expiresAt === undefined) return;
    const wait = Math.max(0, Math.min(entry.expiresAt - performance.now(), MAX_TIMER_MS));
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (this.entries.get(k) !== entry) return;
      if (performance.now() >= entry.expiresAt!) {
        this.delete(k);
        this.options.logger?.debug({ fingerprint: this.fingerprintOf(entry.view) }, 'identity expired');
      } else {
        this.armExpiry(k, entry);
      }
    }, wait);
    // An expiry timer alone must not keep a process (or a test) alive.
    entry.timer.unref();
  }
}
