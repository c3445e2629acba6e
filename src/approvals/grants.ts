/**
 * Grants: what "remember" (`tsagent approve ID --remember`, the notification's
 * allow-remember) leaves behind (POLICY.md §4). A grant lets the same key, asked by the same
 * program (`exe`), for the same destination host — or, on a connection bound to no host, for
 * the same purpose — sign without a prompt until it expires. Every use, expiry and revocation
 * is an audit record (event "approval").
 *
 * A request whose program is unknown (no /proc/PID/exe) creates no grant: "the same program"
 * cannot be proven for it, so remembering it would allow any unknown program.
 */
import type { AuditSink, SignQuestion } from '../agent/ports';
import type { Purpose } from '../context/types';
import { newId } from './ids';
import { approvalRecord, approvalKeyJson } from './records';
import type { GrantJson } from './records';

export const DEFAULT_REMEMBER_MS = 15 * 60_000;

interface Grant {
  readonly id: string;
  readonly fingerprint: string;
  readonly exe: string;
  readonly host: string | null;
  readonly purpose: Purpose | null;
  readonly expires: number;
  /** The approved question, for the audit record when the grant ends. */
  readonly origin: SignQuestion;
  readonly timer: NodeJS.Timeout;
}

export interface GrantStoreOptions {
  /** How long a grant lasts (config `remember`, default 15 min). */
  readonly durationMs?: number;
  readonly audit?: AuditSink;
  /** Clock, for tests of expiry without waiting. */
  readonly now?: () => number;
}

/** The scope a question falls in: host when bound (its name, else its host key), purpose when not. */
function scopeOf(q: SignQuestion): { host: string | null; purpose: Purpose | null } {
  if (q.destination === null) return { host: null, purpose: q.purpose };
  return { host: q.destination.host ?? q.destination.hostKey, purpose: null };
}

export class GrantStore {
  private readonly grants = new Map<string, Grant>();
  private readonly now: () => number;
  readonly durationMs: number;

  constructor(private readonly options: GrantStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.durationMs = options.durationMs ?? DEFAULT_REMEMBER_MS;
  }

  /** Remembers an approved question; null when its program is unknown (see the module comment). */
  create(q: SignQuestion): GrantJson | null {
    const exe = q.process?.exe ?? null;
    if (exe === null || this.durationMs <= 0) return null;
    const id = newId((candidate) => this.grants.has(candidate));
    const expires = this.now() + this.durationMs;
    const timer = setTimeout(() => this.end(id, 'expired'), this.durationMs);
    timer.unref();
    const grant: Grant = { id, fingerprint: q.key.fingerprint, exe, ...scopeOf(q), expires, origin: q, timer };
    this.grants.set(id, grant);
    this.options.audit?.record(
      approvalRecord(q, 'allow', `grant ${id} created until ${new Date(expires).toISOString()}`, this.now()),
    );
    return this.toJson(grant);
  }

  /**
   * The grant that covers `q`, recorded as used (audit: allow, "grant ID"); undefined when none.
   * A grant past its time (its timer not yet run) counts as ended.
   */
  use(q: SignQuestion): GrantJson | undefined {
    if (this.grants.size === 0) return undefined;
    const exe = q.process?.exe ?? null;
    if (exe === null) return undefined;
    const { host, purpose } = scopeOf(q);
    const now = this.now();
    for (const g of this.grants.values()) {
      if (g.fingerprint !== q.key.fingerprint || g.exe !== exe || g.host !== host || g.purpose !== purpose) continue;
      if (g.expires <= now) {
        this.end(g.id, 'expired');
        continue;
      }
      this.options.audit?.record(approvalRecord(q, 'allow', `grant ${g.id}`, now));
      return this.toJson(g);
    }
    return undefined;
  }

  list(): GrantJson[] {
    const now = this.now();
    for (const g of [...this.grants.values()]) if (g.expires <= now) this.end(g.id, 'expired');
    return [...this.grants.values()].map((g) => this.toJson(g));
  }

  /** Ends one grant; false when no grant has that id. */
  revoke(id: string): boolean {
    return this.end(id, 'revoked');
  }

  /** Ends every grant; returns how many there were. */
  revokeAll(): number {
    const ids = [...this.grants.keys()];
    for (const id of ids) this.end(id, 'revoked');
    return ids.length;
  }

  /** Ends the grants of one key (it was removed or expired); returns how many. */
  revokeForKey(fingerprint: string, why = 'key removed'): number {
    const ids = [...this.grants.values()].filter((g) => g.fingerprint === fingerprint).map((g) => g.id);
    for (const id of ids) this.end(id, why);
    return ids.length;
  }

  /** Drops every grant without audit records (agent shutdown). */
  close(): void {
    for (const g of this.grants.values()) clearTimeout(g.timer);
    this.grants.clear();
  }

  private end(id: string, why: string): boolean {
    const g = this.grants.get(id);
    if (g === undefined) return false;
    clearTimeout(g.timer);
    this.grants.delete(id);
    this.options.audit?.record(approvalRecord(g.origin, 'deny', `grant ${id} ${why}`, this.now()));
    return true;
  }

  private toJson(g: Grant): GrantJson {
    return {
      id: g.id,
      key: approvalKeyJson(g.origin.key),
      exe: g.exe,
      host: g.host,
      purpose: g.purpose,
      expires: new Date(g.expires).toISOString(),
    };
  }
}
