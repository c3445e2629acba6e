/**
 * `tsagent approvals | approve ID [--remember] | deny ID | grants | revoke ID|--all`
 * (POLICY.md §4, §5): the terminal prompt method, a client of the control socket. --json
 * prints §5's shapes: an array of approvals or grants; approve/deny print the answer
 * `{id, allowed, grant}`, revoke `{revoked}`.
 */
import { Command } from 'commander';
import { controlRequest, findControlSocket } from '../client/control-client';
import type { ApprovalJson, GrantJson } from '../approvals/records';
import type { TerminalAnswerResult } from '../approvals/pending';
import { describeDestination, describeProgram, describePurpose } from '../approvals/prompt-text';
import type { JsonValue } from '../protocol/control';
import { alignedTable, safe, withCommon } from './control-commands';
import type { Io } from './start';

interface Flags {
  readonly socket?: string;
  readonly json?: boolean;
  readonly remember?: boolean;
  readonly all?: boolean;
}

const keyLabel = (k: ApprovalJson['key']): string => `${safe(k.name ?? k.comment)} ${k.fingerprint}`;

function approvalsText(list: readonly ApprovalJson[]): string {
  if (list.length === 0) return 'No pending approvals.';
  const rows = list.map((a) => [
    a.id,
    a.asked,
    describeProgram(a.process),
    describeDestination(a.destination),
    describePurpose(a.purpose),
    keyLabel(a.key),
  ]);
  return alignedTable(['ID', 'ASKED', 'PROGRAM', 'DESTINATION', 'PURPOSE', 'KEY'], rows);
}

function grantsText(list: readonly GrantJson[]): string {
  if (list.length === 0) return 'No grants.';
  const rows = list.map((g) => [
    g.id,
    g.expires,
    safe(g.exe),
    g.host !== null ? safe(g.host) : `(unbound) ${g.purpose ?? ''}`,
    keyLabel(g.key),
  ]);
  return alignedTable(['ID', 'EXPIRES', 'PROGRAM', 'HOST', 'KEY'], rows);
}

function answerText(r: TerminalAnswerResult): string {
  const base = `${r.allowed ? 'approved' : 'denied'} ${r.id}`;
  return r.grant === null ? base : `${base}; remembered as grant ${r.grant.id} until ${r.grant.expires}`;
}

export function approvalCommands(io: Io): Command[] {
  const call = (
    flags: Flags,
    command: string,
    args: { readonly [k: string]: JsonValue },
    text: (r: JsonValue) => string,
  ): Promise<void> =>
    controlRequest(findControlSocket(flags.socket, io.env), command, args).then((r) => {
      io.out(flags.json === true ? `${JSON.stringify(r)}\n` : `${text(r)}\n`);
    });

  const approvals = withCommon(new Command('approvals').description('list the sign requests waiting for an answer')).action(
    (flags: Flags) => call(flags, 'approvals', {}, (r) => approvalsText(r as unknown as ApprovalJson[])),
  );
  const approve = withCommon(new Command('approve').description('allow a pending request'))
    .argument('<id>', 'the approval id (tsagent approvals)')
    .option('--remember', 'also allow the same key, program and host without asking for the configured `remember` time')
    .action((id: string, flags: Flags) =>
      call(flags, 'approve', { id, remember: flags.remember === true }, (r) => answerText(r as unknown as TerminalAnswerResult)),
    );
  const deny = withCommon(new Command('deny').description('refuse a pending request'))
    .argument('<id>', 'the approval id (tsagent approvals)')
    .action((id: string, flags: Flags) => call(flags, 'deny', { id }, (r) => answerText(r as unknown as TerminalAnswerResult)));
  const grants = withCommon(new Command('grants').description('list what --remember allowed, and until when')).action(
    (flags: Flags) => call(flags, 'grants', {}, (r) => grantsText(r as unknown as GrantJson[])),
  );
  const revoke = withCommon(new Command('revoke').description('end a grant (or every grant with --all)'))
    .argument('[id]', 'the grant id (tsagent grants)')
    .option('--all', 'end every grant')
    .action((id: string | undefined, flags: Flags) => {
      // commander prints the message and exits 1 (a UsageError would print start's help).
      if ((id === undefined) === (flags.all !== true)) revoke.error('error: revoke needs a grant id or --all');
      return call(flags, 'revoke', flags.all === true ? { all: true } : { id: id! }, (r) => {
        const n = (r as { revoked?: unknown }).revoked;
        return `revoked ${typeof n === 'number' ? n : 0} grant${n === 1 ? '' : 's'}`;
      });
    });
  return [approvals, approve, deny, grants, revoke].map((c) =>
    c.exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err }).showHelpAfterError(),
  );
}
