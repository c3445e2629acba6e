/**
 * What the decision gate (agent/) asks of the layers above it. The gate receives these as
 * interfaces so agent/ stays free of I/O and testable on its own: policy/ implements
 * PolicyPort, approvals/ ApprovalPort, audit/ AuditSink. With none given, the gate behaves
 * as OpenSSH's agent (allow everything the protocol allows; confirm only `ssh-add -c` keys).
 */
import type { Destination, ProcessInfo, Purpose } from '../context/types';

/** What policy and prompts may know of a key: public facts only. */
export interface KeyView {
  readonly blob: Buffer;
  /** SHA256:… */
  readonly fingerprint: string;
  readonly comment: string;
  /** Wire type name, e.g. ssh-ed25519. */
  readonly type: string;
  /** The config's name for it ([[key]] name), else null. */
  readonly name: string | null;
  readonly source: 'config' | 'added' | 'pkcs11';
  /** `ssh-add -c` or config `confirm = true`. */
  readonly confirm: boolean;
}

export type PolicyAction = 'allow' | 'confirm' | 'deny';

export interface PolicyDecision {
  readonly action: PolicyAction;
  /** For the audit log: "rule 2", "key confirm", "hosts", "default". */
  readonly reason: string;
}

export interface SignQuestion {
  readonly key: KeyView;
  readonly process: ProcessInfo | null;
  readonly destination: Destination | null;
  readonly purpose: Purpose;
}

export interface PolicyPort {
  /**
   * The identities a list shows on this connection, in order (POLICY.md §2: hosts filter,
   * `offer` order and `max-offered` on bound connections; every key when unbound).
   */
  selectForList(keys: readonly KeyView[], destination: Destination | null): readonly KeyView[];
  /** First matching rule, key `hosts`, key confirm (POLICY.md §2). */
  decideSign(q: SignQuestion): PolicyDecision;
  /**
   * Changes whenever the configuration in force does (`tsagent reload`). A port that has it
   * lets the gate reuse a decision for the same connection, key, destination and purpose
   * while the generation stays; without it every sign is decided afresh. The one other input
   * of RulePolicy, known_hosts (re-read when it changes), is thus read once per connection
   * and key: an edit reaches the next connection, as the destination's names (computed at
   * session-bind) already do.
   */
  readonly generation?: number;
}

export interface ApprovalAnswer {
  readonly allowed: boolean;
  /** "approved by notification", "denied by askpass", "timeout", "grant 3", … */
  readonly reason: string;
}

export interface ApprovalPort {
  /**
   * Asks the user (POLICY.md §4). Resolves with the first answer; `signal` aborts when the
   * request can no longer be served (agent locked, key removed or expired, connection gone).
   */
  ask(q: SignQuestion, signal: AbortSignal): Promise<ApprovalAnswer>;
  /**
   * A key is gone (removed, expired, `ssh-add -D`; for a registered key: its private half
   * dropped by `ssh-add -d`/`-D`): its grants end. Called once per key.
   */
  keyGone?(fingerprint: string): void;
  /** The agent was locked (`ssh-add -x`): every grant ends. */
  agentLocked?(): void;
}

export type AuditEventName =
  'list' | 'sign' | 'add' | 'remove' | 'remove-all' | 'lock' | 'unlock' | 'approval' | 'key-decrypted' | 'config';

export type AuditDecision = 'allow' | 'deny' | 'fail';

/** One audit log line (POLICY.md §6). Never key material or passphrases. */
export interface AuditRecord {
  readonly time: string;
  readonly event: AuditEventName;
  readonly decision: AuditDecision;
  readonly reason: string;
  readonly key?: { readonly fingerprint: string; readonly comment: string; readonly name: string | null; readonly type: string };
  /** list records: the fingerprints offered. */
  readonly keys?: readonly string[];
  readonly process: ProcessInfo | null;
  readonly destination: Destination | null;
  readonly purpose?: Purpose;
  readonly ms?: number;
}

export interface AuditSink {
  /** Queues a record (cheap, synchronous, never throws). */
  record(r: AuditRecord): void;
  /**
   * Whether records of `event` are kept now (`[audit] enabled`, `list`); false spares the
   * gate building them, and reading /proc for them. Default: all are.
   */
  accepts?(event: AuditEventName): boolean;
  /** Writes every queued record now. */
  flush(): void;
  /**
   * Calls `then` once every record queued so far is written, with the records that other
   * connections queue in the same event-loop turn: the server holds a sign reply on it
   * (POLICY.md §6: sign decisions are on disk before the reply), so concurrent signatures
   * share one write. Returns false, without calling `then`, when nothing is queued.
   * Without it the server calls flush().
   */
  afterWrite?(then: () => void): boolean;
}
