/**
 * Pending approvals (POLICY.md §4): the ApprovalPort the decision gate calls when a sign
 * request needs the user's confirmation.
 *
 * - A request covered by a grant is allowed at once (grants.ts).
 * - Otherwise it becomes a pending approval with a short id, listed at once for the terminal
 *   method (`tsagent approvals`, `approve ID [--remember]`, `deny ID`), and shown by every
 *   other available method (notification, askpass) in `prompt` order, all at once. The first
 *   answer wins; the other prompts are withdrawn (notification closed, askpass killed by pid).
 * - No answer by `prompt-timeout` after the request arrived denies. The gate's AbortSignal
 *   (agent locked, key removed or expired, connection closed) refuses and withdraws.
 * - Bounded: one shown prompt per key at a time (a later request for the same key waits its
 *   turn, and is then first checked against the grants its predecessor's answer may have
 *   made), at most `maxShown` prompts on screen at once, at most `maxPending` requests
 *   waiting in all; beyond that a request is refused at once.
 * - Nothing here blocks: ask() only registers the request and returns a promise.
 *
 * Audit (event "approval"): the prompt (decision "deny": until answered the request is not
 * allowed), the answer, grant creation, grant use, expiry and revocation.
 */
import type { Logger } from '../log';
import type { ApprovalAnswer, ApprovalPort, AuditSink, SignQuestion } from '../agent/ports';
import { AskpassChannel } from './askpass';
import { DEFAULT_PROMPT_METHODS } from './channel';
import { MAX_CONCURRENT_PROMPTS, MAX_WAITING_PROMPTS } from '../agent/confirm';
import type { PromptChannel, PromptMethod, ShownPrompt } from './channel';
import { GrantStore } from './grants';
import { newId } from './ids';
import { NotificationChannel } from './notification';
import { promptText } from './prompt-text';
import { approvalRecord, approvalKeyJson } from './records';
import type { ApprovalJson, GrantJson } from './records';

export const DEFAULT_PROMPT_TIMEOUT_MS = 60_000;
/** Prompts on screen at once: enough for a few keys, not a wall of windows (issue 18's cap, named once in agent/confirm.ts). */
export const DEFAULT_MAX_SHOWN = MAX_CONCURRENT_PROMPTS;
/** Requests waiting in all; one more is refused rather than queued without end. */
export const DEFAULT_MAX_PENDING = MAX_WAITING_PROMPTS;

export interface ApprovalsOptions {
  /** Methods in order (config `prompt`); `terminal` is always on. */
  readonly prompt?: readonly PromptMethod[];
  /** Config `prompt-timeout`. */
  readonly promptTimeoutMs?: number;
  /** Config `remember`: how long a grant lasts. */
  readonly rememberMs?: number;
  readonly maxShown?: number;
  readonly maxPending?: number;
  /** The daemon's environment (DBUS_SESSION_BUS_ADDRESS, SSH_ASKPASS, DISPLAY…). */
  readonly env?: NodeJS.ProcessEnv;
  readonly audit?: AuditSink;
  readonly logger?: Logger;
  /** Replaces the channels `prompt` would make (embedding, tests). */
  readonly channels?: readonly PromptChannel[];
  readonly now?: () => number;
  /**
   * Deny at once a prompt that no on-screen method (notification, askpass) could show, rather
   * than wait for `tsagent approve` until the timeout. The daemon sets it when there is no
   * config file, where it must answer as OpenSSH's agent does (confirm fails without askpass).
   */
  readonly denyWhenUnshown?: boolean;
}

export interface TerminalAnswerResult {
  readonly id: string;
  readonly allowed: boolean;
  /** The grant `--remember` created; null without it or when the program is unknown. */
  readonly grant: GrantJson | null;
}

interface Pending {
  readonly id: string;
  readonly q: SignQuestion;
  readonly asked: number;
  state: 'waiting' | 'shown' | 'done';
  readonly shown: ShownPrompt[];
  readonly timer: NodeJS.Timeout;
  readonly detach: () => void;
  readonly resolve: (a: ApprovalAnswer) => void;
  grant: GrantJson | null;
}

/** "15 min", "1 h", "30 s": the remember button's label. */
export function durationLabel(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s % 3600 === 0 && s >= 3600) return `${s / 3600} h`;
  if (s % 60 === 0 && s >= 60) return `${s / 60} min`;
  return `${s} s`;
}

function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error && r.name !== 'AbortError') return r.message;
  if (typeof r === 'string' && r !== '') return r;
  return 'request aborted';
}

export function defaultChannels(methods: readonly PromptMethod[], env: NodeJS.ProcessEnv, logger?: Logger): PromptChannel[] {
  const out: PromptChannel[] = [];
  for (const m of methods) {
    if (m === 'notification') out.push(new NotificationChannel({ env, ...(logger !== undefined ? { logger } : {}) }));
    else if (m === 'askpass') out.push(new AskpassChannel({ env }));
  }
  return out;
}

export class PendingApprovals implements ApprovalPort {
  readonly grants: GrantStore;
  /** Insertion order is arrival order: the queue is served first come, first shown. */
  private readonly pending = new Map<string, Pending>();
  /** Per key fingerprint, its requests in arrival order; only the first may be shown. */
  private readonly byKey = new Map<string, Pending[]>();
  private readonly channels: readonly PromptChannel[];
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly maxShown: number;
  private readonly maxPending: number;
  private shownCount = 0;
  private pumping = false;

  constructor(private readonly options: ApprovalsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.promptTimeoutMs ?? DEFAULT_PROMPT_TIMEOUT_MS;
    this.maxShown = options.maxShown ?? DEFAULT_MAX_SHOWN;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.channels =
      options.channels ?? defaultChannels(options.prompt ?? DEFAULT_PROMPT_METHODS, options.env ?? process.env, options.logger);
    this.grants = new GrantStore({
      ...(options.rememberMs !== undefined ? { durationMs: options.rememberMs } : {}),
      ...(options.audit !== undefined ? { audit: options.audit } : {}),
      now: this.now,
    });
  }

  ask(q: SignQuestion, signal: AbortSignal): Promise<ApprovalAnswer> {
    if (signal.aborted) return Promise.resolve({ allowed: false, reason: `withdrawn: ${abortReason(signal)}` });
    const grant = this.grants.use(q);
    if (grant !== undefined) return Promise.resolve({ allowed: true, reason: `grant ${grant.id}` });
    if (this.pending.size >= this.maxPending) {
      const reason = `too many pending approvals (${this.maxPending})`;
      this.audit(q, 'deny', reason);
      return Promise.resolve({ allowed: false, reason });
    }
    return new Promise<ApprovalAnswer>((resolve) => {
      const id = newId((candidate) => this.pending.has(candidate));
      const onAbort = (): void => this.finish(entry, false, `withdrawn: ${abortReason(signal)}`, false);
      signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => this.finish(entry, false, 'timeout', false), this.timeoutMs);
      const entry: Pending = {
        id,
        q,
        asked: this.now(),
        state: 'waiting',
        shown: [],
        timer,
        detach: () => signal.removeEventListener('abort', onAbort),
        resolve,
        grant: null,
      };
      this.pending.set(id, entry);
      const queue = this.byKey.get(q.key.fingerprint);
      if (queue === undefined) this.byKey.set(q.key.fingerprint, [entry]);
      else queue.push(entry);
      this.audit(q, 'deny', `approval ${id} asked`);
      this.options.logger?.debug({ approval: id, fingerprint: q.key.fingerprint }, 'approval pending');
      this.pump();
    });
  }

  /** The pending approvals, oldest first (`tsagent approvals --json`, POLICY.md §5). */
  list(): ApprovalJson[] {
    return [...this.pending.values()].map((p) => ({
      id: p.id,
      key: approvalKeyJson(p.q.key),
      process: p.q.process,
      destination: p.q.destination,
      purpose: p.q.purpose,
      asked: new Date(p.asked).toISOString(),
    }));
  }

  /** The terminal method's answer (`tsagent approve ID [--remember]`, `deny ID`); null for an unknown id. */
  answer(id: string, allowed: boolean, remember: boolean): TerminalAnswerResult | null {
    const entry = this.pending.get(id);
    if (entry === undefined) return null;
    this.finish(entry, allowed, allowed ? 'approved by terminal' : 'denied by terminal', remember);
    return { id, allowed, grant: entry.grant };
  }

  /** The key was removed or expired (POLICY.md §4): its grants end, its pending requests are refused. */
  keyGone(fingerprint: string): void {
    this.grants.revokeForKey(fingerprint);
    for (const entry of [...(this.byKey.get(fingerprint) ?? [])]) this.finish(entry, false, 'withdrawn: key removed', false);
  }

  /** The agent was locked: every grant ends, every pending request is refused. */
  agentLocked(): void {
    this.grants.revokeAll();
    for (const entry of [...this.pending.values()]) this.finish(entry, false, 'withdrawn: agent locked', false);
  }

  /** Denies everything pending, withdraws every prompt, drops the grants (agent shutdown). */
  close(): void {
    for (const entry of [...this.pending.values()]) this.finish(entry, false, 'withdrawn: agent stopping', false);
    for (const c of this.channels) c.close();
    this.grants.close();
  }

  private finish(entry: Pending, allowed: boolean, how: string, remember: boolean): void {
    if (entry.state === 'done') return;
    if (entry.state === 'shown') this.shownCount--;
    entry.state = 'done';
    clearTimeout(entry.timer);
    entry.detach();
    this.pending.delete(entry.id);
    const queue = this.byKey.get(entry.q.key.fingerprint);
    if (queue !== undefined) {
      const at = queue.indexOf(entry);
      if (at >= 0) queue.splice(at, 1);
      if (queue.length === 0) this.byKey.delete(entry.q.key.fingerprint);
    }
    for (const s of entry.shown) s.withdraw();
    this.audit(entry.q, allowed ? 'allow' : 'deny', `approval ${entry.id} ${how}`);
    if (allowed && remember) entry.grant = this.grants.create(entry.q);
    const reason = entry.grant !== null ? `${how}, remembered as grant ${entry.grant.id}` : how;
    this.options.logger?.debug({ approval: entry.id, allowed, reason }, 'approval answered');
    entry.resolve({ allowed, reason });
    this.pump();
  }

  /** Shows the requests whose turn it is, first come first served, within the bounds. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (const entry of [...this.pending.values()]) {
        if (entry.state !== 'waiting' || this.byKey.get(entry.q.key.fingerprint)?.[0] !== entry) continue;
        // The answer to the request before it may have made a grant that covers it.
        const grant = this.grants.use(entry.q);
        if (grant !== undefined) {
          this.pumping = false;
          this.finish(entry, true, `grant ${grant.id}`, false);
          return;
        }
        if (this.shownCount >= this.maxShown) continue;
        this.show(entry);
      }
    } finally {
      this.pumping = false;
    }
  }

  private show(entry: Pending): void {
    entry.state = 'shown';
    this.shownCount++;
    const request = {
      id: entry.id,
      text: promptText(entry.q, entry.id),
      rememberLabel: durationLabel(this.grants.durationMs),
      timeoutMs: Math.max(1, entry.asked + this.timeoutMs - this.now()),
    };
    let unavailable = 0;
    const noMethod = (): void => {
      if (++unavailable === this.channels.length && this.options.denyWhenUnshown === true && entry.state !== 'done') {
        this.finish(entry, false, 'no prompt method available', false);
      }
    };
    if (this.channels.length === 0 && this.options.denyWhenUnshown === true) {
      this.finish(entry, false, 'no prompt method available', false);
      return;
    }
    for (const channel of this.channels) {
      channel
        .show(request)
        .then((shown) => {
          if (shown === null) {
            noMethod();
            return;
          }
          if (entry.state === 'done') {
            shown.withdraw();
            return;
          }
          entry.shown.push(shown);
          return shown.answer.then((a) => {
            if (a === null) return;
            const how = `${a.allowed ? 'approved' : 'denied'} by ${channel.method}`;
            this.finish(entry, a.allowed, how, a.remember);
          });
        })
        .catch((e: unknown) => {
          noMethod();
          this.options.logger?.debug(
            { approval: entry.id, method: channel.method, err: e instanceof Error ? e.message : String(e) },
            'prompt method failed',
          );
        });
    }
  }

  private audit(q: SignQuestion, decision: 'allow' | 'deny', reason: string): void {
    this.options.audit?.record(approvalRecord(q, decision, reason, this.now()));
  }
}
