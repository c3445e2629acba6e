/**
 * The control-socket commands of POLICY.md §4/§5 for approvals and grants, as plain-JSON
 * functions for the command registry: `tsagent approvals`, `approve ID [--remember]`,
 * `deny ID`, `grants`, `revoke ID|--all`. An unknown id is a UsageError (the command exits 1
 * with its message).
 */
import { UsageError } from '../errors';
import type { PendingApprovals, TerminalAnswerResult } from './pending';
import type { ApprovalJson, GrantJson } from './records';

export interface ApprovalHandlers {
  approvals(): ApprovalJson[];
  approve(id: string, remember?: boolean): TerminalAnswerResult;
  deny(id: string): TerminalAnswerResult;
  grants(): GrantJson[];
  /** `target` is a grant id, or "all" (`tsagent revoke --all`). */
  revoke(target: string): { revoked: number };
}

export function approvalHandlers(approvals: PendingApprovals): ApprovalHandlers {
  const answer = (id: string, allowed: boolean, remember: boolean): TerminalAnswerResult => {
    const result = approvals.answer(String(id), allowed, remember);
    if (result === null) throw new UsageError(`no pending approval ${JSON.stringify(String(id))}`);
    return result;
  };
  return {
    approvals: () => approvals.list(),
    approve: (id, remember = false) => answer(id, true, remember === true),
    deny: (id) => answer(id, false, false),
    grants: () => approvals.grants.list(),
    revoke: (target) => {
      if (target === 'all' || target === '--all') return { revoked: approvals.grants.revokeAll() };
      if (!approvals.grants.revoke(String(target))) throw new UsageError(`no grant ${JSON.stringify(String(target))}`);
      return { revoked: 1 };
    },
  };
}

/** A command's JSON arguments, as the control socket decodes them. */
export type CommandArgs = { readonly [k: string]: unknown };

function idArg(args: CommandArgs): string {
  const id = args.id;
  if (typeof id !== 'string' || id === '') throw new UsageError('argument id must be a non-empty string');
  return id;
}

/**
 * The same commands keyed by name, taking the control request's `args` object, for
 * `ControlServer.register(name, handler)`: `approvals {}`, `approve {id, remember?}`,
 * `deny {id}`, `grants {}`, `revoke {id}` or `revoke {all: true}`. Bad arguments are
 * UsageErrors.
 */
export function approvalCommands(approvals: PendingApprovals): Readonly<Record<string, (args: CommandArgs) => unknown>> {
  const h = approvalHandlers(approvals);
  return {
    approvals: () => h.approvals(),
    approve: (args) => h.approve(idArg(args), args.remember === true),
    deny: (args) => h.deny(idArg(args)),
    grants: () => h.grants(),
    revoke: (args) => (args.all === true ? h.revoke('all') : h.revoke(idArg(args))),
  };
}
