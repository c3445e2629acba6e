/**
 * The decision gate: every list and every sign request is decided here, by decideList and
 * decideSign, whichever path serves it — the synchronous fast path (Keyring.answerSync) or the
 * asynchronous one (Keyring.list / Keyring.sign). A rule added here covers both.
 *
 * Checks, in order (OpenSSH ssh-agent.c process_sign_request2, then POLICY.md §2):
 * locked, unknown key, expired key, destination constraints (`ssh-add -h`), the PolicyPort,
 * the key's confirm flag. The verdict says what to do: sign now, ask the user first, or
 * refuse with a reason. Whether a signature runs inline or on the thread pool is the signing
 * code's choice (keys/sign.ts), not a policy decision.
 *
 * The ports (agent/ports.ts) are optional: without them the gate behaves as OpenSSH's agent
 * (confirm only `ssh-add -c` keys, through the askpass Confirmer) and the common verdicts are
 * shared constants, so the hot path allocates nothing and computes no request context.
 */
import { signPurpose } from '../context/purpose';
import { AgentFailureError, AgentLockedError, ConfirmDeniedError, KeyNotFoundError } from '../errors';
import type { AgentError } from '../errors';
import { fingerprint } from '../keys/fingerprint';
import type { FingerprintHash } from '../keys/fingerprint';
import type { Confirmer } from './confirm';
import { identityPermitted, restrictedSignAllowed } from './destination-policy';
import type { DestinationRule } from './destination-policy';
import type {
  ApprovalAnswer,
  ApprovalPort,
  AuditDecision,
  AuditEventName,
  AuditRecord,
  AuditSink,
  KeyView,
  PolicyDecision,
  PolicyPort,
  SignQuestion,
} from './ports';
import type { AgentSession } from './session';

/** What the gate reads of a held key. */
export interface GateKey {
  /** Built once when the key is added (fingerprint included). */
  readonly view: KeyView;
  /** Destination constraints (`ssh-add -h`); empty: usable anywhere. */
  readonly rules: readonly DestinationRule[];
  /** Monotonic deadline (performance.now() ms), or undefined for no lifetime. */
  readonly expiresAt: number | undefined;
}

export type RefusalKind = 'locked' | 'unknown-key' | 'expired' | 'destination' | 'policy' | 'confirm-denied';

export interface SignNow {
  readonly action: 'sign';
  /** For the audit record: "default", or the policy's reason. */
  readonly reason: string;
  /** The request context, when a port needed it (reused for the audit record). */
  readonly question: SignQuestion | undefined;
}

export interface AskFirst {
  readonly action: 'ask';
  readonly reason: string;
  readonly question: SignQuestion | undefined;
  /** A further prompt line for destination-constrained keys (OpenSSH's confirm_key hint). */
  readonly extra: string | undefined;
}

export interface Refusal {
  readonly action: 'refuse';
  readonly kind: RefusalKind;
  /** For logs, the error message and the audit record. */
  readonly reason: string;
}

export type SignVerdict = SignNow | AskFirst | Refusal;

export interface GateOptions {
  readonly policy?: PolicyPort;
  readonly approvals?: ApprovalPort;
  readonly audit?: AuditSink;
  /** Asks the user when no ApprovalPort is given (askpass, as OpenSSH). */
  readonly confirmer: Confirmer;
  /** Fingerprint hash for the Confirmer's prompt (`-E`). */
  readonly fingerprintHash: FingerprintHash;
}

const refusal = (kind: RefusalKind, reason: string): Refusal => Object.freeze({ action: 'refuse', kind, reason });

export const REFUSE_LOCKED = refusal('locked', 'agent is locked');
export const REFUSE_UNKNOWN_KEY = refusal('unknown-key', 'no such identity');
export const REFUSE_EXPIRED = refusal('expired', 'identity expired');
export const REFUSE_DESTINATION = refusal('destination', 'destination-constrained key may not sign this here');
export const REFUSE_CONFIRM_DENIED = refusal('confirm-denied', 'user refused to confirm the signature');

const SIGN_DEFAULT: SignNow = Object.freeze({ action: 'sign', reason: 'default', question: undefined });
const ASK_KEY_CONFIRM: AskFirst = Object.freeze({ action: 'ask', reason: 'key confirm', question: undefined, extra: undefined });
const NO_KEYS: readonly KeyView[] = Object.freeze([]);

/** The typed error a refusal is thrown as (the dispatcher turns it into FAILURE). */
export function refusalError(r: Refusal): AgentError {
  switch (r.kind) {
    case 'locked':
      return new AgentLockedError(r.reason);
    case 'unknown-key':
    case 'expired':
      return new KeyNotFoundError(r.reason);
    case 'destination':
      return new AgentFailureError(r.reason);
    case 'policy':
      return new AgentFailureError(`refused by policy: ${r.reason}`);
    case 'confirm-denied':
      return new ConfirmDeniedError(r.reason);
  }
}

/** Audit: a request that could not be served is `fail`; one a rule or the user refused, `deny`. */
export function auditDecisionOf(r: Refusal): AuditDecision {
  return r.kind === 'locked' || r.kind === 'unknown-key' || r.kind === 'expired' ? 'fail' : 'deny';
}

/**
 * The fingerprints a list offered, one array per offered array: the keyring hands out the
 * same array until it changes, and the audit writer caches the JSON of this one.
 */
const listedArrays = new WeakMap<readonly KeyView[], readonly string[]>();

function listedFingerprints(shown: readonly KeyView[]): readonly string[] {
  let fps = listedArrays.get(shown);
  if (fps === undefined) {
    fps = Object.freeze(shown.map((v) => v.fingerprint));
    listedArrays.set(shown, fps);
  }
  return fps;
}

/** One per key view: the audit writer caches a record part's JSON by its object. */
const keyRecords = new WeakMap<KeyView, NonNullable<AuditRecord['key']>>();

function keyRecord(v: KeyView): NonNullable<AuditRecord['key']> {
  let r = keyRecords.get(v);
  if (r === undefined) {
    r = { fingerprint: v.fingerprint, comment: v.comment, name: v.name, type: v.type };
    keyRecords.set(v, r);
  }
  return r;
}

export class Gate {
  private readonly policy: PolicyPort | undefined;
  private readonly approvals: ApprovalPort | undefined;
  private readonly audit: AuditSink | undefined;
  private readonly confirmer: Confirmer;
  private readonly hash: FingerprintHash;
  /** Some port wants the request context (process, destination, purpose) of a sign. */
  private readonly wantsFacts: boolean;
  private lastMs = -1;
  private lastTime = '';

  constructor(options: GateOptions) {
    this.policy = options.policy;
    this.approvals = options.approvals;
    this.audit = options.audit;
    this.confirmer = options.confirmer;
    this.hash = options.fingerprintHash;
    this.wantsFacts = this.policy !== undefined || this.approvals !== undefined || this.audit !== undefined;
  }

  /** A record's time: one string per millisecond, however many records share it. */
  private now(): string {
    const ms = Date.now();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastTime = new Date(ms).toISOString();
    }
    return this.lastTime;
  }

  /** Whether decisions are recorded (callers time requests only then). */
  get auditing(): boolean {
    return this.audit !== undefined;
  }

  /**
   * The identities a list shows on `session`, in order. `all` is every held key in insertion
   * order; when the gate has nothing to filter it returns `all` itself, so the caller can
   * serve its cached reply. `restricted` iterates the keys when some carry destination
   * constraints (OpenSSH hides those the connection's path does not permit).
   */
  decideList(
    locked: boolean,
    all: readonly KeyView[],
    restricted: Iterable<GateKey> | undefined,
    session: AgentSession,
  ): readonly KeyView[] {
    if (locked) {
      this.recordList(session, NO_KEYS, 'fail', 'agent is locked');
      return NO_KEYS;
    }
    let shown = all;
    if (restricted !== undefined) {
      const visible: KeyView[] = [];
      for (const k of restricted) if (identityPermitted(k.rules, session.bindings)) visible.push(k.view);
      shown = visible;
    }
    if (this.policy !== undefined) shown = this.policy.selectForList(shown, session.destination());
    this.recordList(session, shown, 'allow', this.policy === undefined ? 'default' : 'policy');
    return shown;
  }

  /**
   * What to do with a sign request for `key` (undefined: not held). Pure apart from the
   * PolicyPort: recording and asking are the caller's next steps, so a fast path that
   * cannot finish (a thread-pool signature) may hand the request on and decide again.
   */
  decideSign(locked: boolean, key: GateKey | undefined, session: AgentSession, keyBlob: Buffer, data: Buffer): SignVerdict {
    const unavailable = this.unavailable(locked, key);
    if (unavailable !== undefined || key === undefined) return unavailable ?? REFUSE_UNKNOWN_KEY;
    let extra: string | undefined;
    if (key.rules.length > 0) {
      extra = restrictedSignAllowed(key.rules, session.bindings, keyBlob, data);
      if (extra === undefined) return REFUSE_DESTINATION;
    }
    if (!this.wantsFacts) {
      if (!key.view.confirm) return SIGN_DEFAULT;
      return extra === undefined ? ASK_KEY_CONFIRM : { action: 'ask', reason: 'key confirm', question: undefined, extra };
    }
    const question = this.question(key.view, session, data);
    let action: 'allow' | 'confirm' = 'allow';
    let reason = 'default';
    if (this.policy !== undefined) {
      const d = this.policyDecision(this.policy, session, question);
      if (d.action === 'deny') return refusal('policy', d.reason);
      action = d.action;
      reason = d.reason;
    }
    // `ssh-add -c` keys are always confirmed unless a rule denies (POLICY.md §2).
    if (action === 'allow' && key.view.confirm) {
      action = 'confirm';
      reason = 'key confirm';
    }
    return action === 'confirm' ? { action: 'ask', reason, question, extra } : { action: 'sign', reason, question };
  }

  /**
   * The refusals that can arise while a request waits (for the user, say): the agent locked,
   * the key removed or expired. decideSign starts with these; a caller re-checks them after.
   */
  unavailable(locked: boolean, key: GateKey | undefined): Refusal | undefined {
    if (locked) return REFUSE_LOCKED;
    if (key === undefined) return REFUSE_UNKNOWN_KEY;
    if (key.expiresAt !== undefined && performance.now() >= key.expiresAt) return REFUSE_EXPIRED;
    return undefined;
  }

  /**
   * Asks the user about an `ask` verdict: through the ApprovalPort when there is one, else the
   * Confirmer (askpass). `signal` withdraws the question when the request can no longer be
   * served. Never rejects.
   */
  async ask(verdict: AskFirst, view: KeyView, session: AgentSession, data: Buffer, signal: AbortSignal): Promise<ApprovalAnswer> {
    if (this.approvals !== undefined) {
      try {
        return await this.approvals.ask(verdict.question ?? this.question(view, session, data), signal);
      } catch {
        return { allowed: false, reason: 'approval failed' };
      }
    }
    const fp = this.hash === 'sha256' ? view.fingerprint : fingerprint(view.blob, this.hash);
    const ok = await this.confirmer(
      verdict.extra === undefined
        ? { comment: view.comment, fingerprint: fp }
        : { comment: view.comment, fingerprint: fp, extra: verdict.extra },
    );
    return ok ? { allowed: true, reason: 'approved by askpass' } : { allowed: false, reason: 'denied by askpass' };
  }

  /** Records a sign decision (when auditing). `startedAt`: performance.now() at the request. */
  recordSign(
    session: AgentSession,
    decision: AuditDecision,
    reason: string,
    view: KeyView | undefined,
    data: Buffer,
    question: SignQuestion | undefined,
    startedAt: number,
  ): void {
    if (this.audit === undefined || this.audit.accepts?.('sign') === false) return;
    const q = question ?? (view === undefined ? undefined : this.question(view, session, data));
    // One object literal per record, no spreads: this runs for every signature.
    const record: AuditRecord = {
      time: this.now(),
      event: 'sign',
      decision,
      reason,
      key: view === undefined ? undefined : keyRecord(view),
      process: session.process,
      destination: q?.destination ?? session.destination(),
      purpose: q?.purpose ?? signPurpose(data).purpose,
      ms: performance.now() - startedAt,
    };
    this.audit.record(record);
  }

  /** Records an add, remove, remove-all, lock or unlock (when auditing). */
  recordChange(event: AuditEventName, decision: AuditDecision, reason: string, session: AgentSession, view?: KeyView): void {
    if (this.audit === undefined || this.audit.accepts?.(event) === false) return;
    this.audit.record({
      time: this.now(),
      event,
      decision,
      reason,
      key: view === undefined ? undefined : keyRecord(view),
      process: session.process,
      destination: session.destination(),
    });
  }

  private recordList(session: AgentSession, shown: readonly KeyView[], decision: AuditDecision, reason: string): void {
    if (this.audit === undefined || this.audit.accepts?.('list') === false) return;
    this.audit.record({
      time: this.now(),
      event: 'list',
      decision,
      reason,
      keys: listedFingerprints(shown),
      process: session.process,
      destination: session.destination(),
    });
  }

  /**
   * The policy's decision, reused on this connection for the same key, destination object
   * (a new binding or remote user is a new object) and purpose while the configuration is
   * the same: the process is the connection's, so nothing the rules read has changed.
   */
  private policyDecision(policy: PolicyPort, session: AgentSession, q: SignQuestion): PolicyDecision {
    const generation = policy.generation;
    if (generation === undefined) return policy.decideSign(q);
    const last = session.policyDecisions.get(q.key);
    if (last !== undefined && last.generation === generation && last.destination === q.destination && last.purpose === q.purpose)
      return last.decision;
    const decision = policy.decideSign(q);
    session.policyDecisions.set(q.key, { generation, destination: q.destination, purpose: q.purpose, decision });
    return decision;
  }

  /** The request context of one sign (POLICY.md §1): the bound destination plus this login's user. */
  private question(view: KeyView, session: AgentSession, data: Buffer): SignQuestion {
    const facts = signPurpose(data);
    return { key: view, process: session.process, destination: session.destinationFor(facts.user), purpose: facts.purpose };
  }
}
