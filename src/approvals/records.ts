/**
 * The plain-JSON views of approvals and grants (POLICY.md §5, printed by `tsagent approvals`
 * and `tsagent grants`) and their audit records (POLICY.md §6, event "approval").
 */
import type { AuditDecision, AuditRecord, KeyView, SignQuestion } from '../agent/ports';
import type { Destination, ProcessInfo, Purpose } from '../context/types';

/** A key as the audit log shows it: public facts only. */
export interface ApprovalKeyJson {
  readonly fingerprint: string;
  readonly comment: string;
  readonly name: string | null;
  readonly type: string;
}

/** One pending approval, `tsagent approvals --json` (POLICY.md §5). */
export interface ApprovalJson {
  readonly id: string;
  readonly key: ApprovalKeyJson;
  readonly process: ProcessInfo | null;
  readonly destination: Destination | null;
  readonly purpose: Purpose;
  /** ISO time the request arrived. */
  readonly asked: string;
}

/** One grant, `tsagent grants --json` (POLICY.md §5). */
export interface GrantJson {
  readonly id: string;
  readonly key: ApprovalKeyJson;
  readonly exe: string;
  /** The destination's host name, or its host key fingerprint when no name is proven; null when unbound. */
  readonly host: string | null;
  /** Set only for a grant made on an unbound connection (then it is the scope instead of host). */
  readonly purpose: Purpose | null;
  /** ISO time the grant ends. */
  readonly expires: string;
}

export function approvalKeyJson(key: KeyView): ApprovalKeyJson {
  return { fingerprint: key.fingerprint, comment: key.comment, name: key.name, type: key.type };
}

export function approvalRecord(q: SignQuestion, decision: AuditDecision, reason: string, now: number): AuditRecord {
  return {
    time: new Date(now).toISOString(),
    event: 'approval',
    decision,
    reason,
    key: approvalKeyJson(q.key),
    process: q.process,
    destination: q.destination,
    purpose: q.purpose,
  };
}
