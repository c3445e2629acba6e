/**
 * `tsagent status | keys | reload | unlock-key NAME` (POLICY.md §5): clients of the control
 * socket. Each finds it from --socket PATH or $SSH_AUTH_SOCK and exits 1 saying so when the
 * agent has none; --json prints the exact JSON shapes of §5, one object or one array.
 */
import { Command } from 'commander';
import { controlRequest, findControlSocket } from '../client/control-client';
import { UsageError } from '../errors';
import type { JsonValue, KeyJson, StatusJson } from '../protocol/control';
import { readPassphrase } from './read-passphrase';
import type { Io } from './start';

interface CommonFlags {
  readonly socket?: string;
  readonly json?: boolean;
}

/** Text from the agent (comments, names) is shown as data: control characters escaped. */
export function safe(s: string): string {
  return s.replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const parts = [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', s ? `${s}s` : ''].filter((x) => x !== '');
  return parts.length === 0 ? '0s' : parts.join('');
}

function statusText(s: StatusJson): string {
  return [
    `pid:      ${s.pid}`,
    `socket:   ${safe(s.socket)}`,
    `control:  ${safe(s.control)}`,
    `config:   ${s.config === null ? '(none)' : safe(s.config)}`,
    `keys:     ${s.keys.held} held, ${s.keys.registered} registered`,
    `locked:   ${s.locked ? 'yes' : 'no'}`,
    `uptime:   ${duration(s.uptimeSeconds)}`,
  ].join('\n');
}

function keysText(keys: readonly KeyJson[]): string {
  if (keys.length === 0) return 'The agent has no identities.';
  const rows = keys.map((k) => [
    safe(k.name ?? '-'),
    k.type,
    k.fingerprint,
    k.source,
    k.loaded ? 'yes' : 'no',
    k.hosts === null ? '*' : safe(k.hosts.join(',')),
    k.confirm ? 'yes' : 'no',
    k.lifetimeLeft === null ? '-' : duration(k.lifetimeLeft),
    k.lastUsed ?? '-',
    safe(k.comment),
  ]);
  return alignedTable(
    ['NAME', 'TYPE', 'FINGERPRINT', 'SOURCE', 'LOADED', 'HOSTS', 'CONFIRM', 'LEFT', 'LAST USED', 'COMMENT'],
    rows,
  );
}

/** Columns padded to their widest cell, two spaces apart; the last column unpadded. */
export function alignedTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

export function withCommon(cmd: Command): Command {
  return cmd.option('--socket <path>', 'the agent socket (default: $SSH_AUTH_SOCK)').option('--json', 'print JSON');
}

export function controlCommands(io: Io): Command[] {
  const print = (flags: CommonFlags, value: JsonValue, text: () => string): void => {
    io.out(flags.json ? `${JSON.stringify(value)}\n` : `${text()}\n`);
  };

  const status = withCommon(
    new Command('status').description('pid, sockets, config file, keys held and registered, locked, uptime'),
  ).action(async (flags: CommonFlags) => {
    const r = await controlRequest(findControlSocket(flags.socket, io.env), 'status');
    print(flags, r, () => statusText(r as unknown as StatusJson));
  });

  const keys = withCommon(
    new Command('keys').description('every key: name, fingerprint, source, loaded, hosts, confirm, lifetime left, last use'),
  ).action(async (flags: CommonFlags) => {
    const r = await controlRequest(findControlSocket(flags.socket, io.env), 'keys');
    print(flags, r, () => keysText(r as unknown as KeyJson[]));
  });

  const reload = withCommon(new Command('reload').description('re-read the config file (the old one stays on error)')).action(
    async (flags: CommonFlags) => {
      const r = (await controlRequest(findControlSocket(flags.socket, io.env), 'reload')) as { warnings?: unknown };
      const warnings = Array.isArray(r.warnings) ? r.warnings.filter((w): w is string => typeof w === 'string') : [];
      for (const w of warnings) io.err(`tsagent: warning: ${safe(w)}\n`);
      print(flags, r as JsonValue, () => 'configuration reloaded');
    },
  );

  const unlock = withCommon(
    new Command('unlock-key').description('decrypt a registered key now (passphrase from the terminal, or stdin)'),
  )
    .argument('<name>', 'the key name ([[key]] name, or its comment)')
    .action(async (name: string, flags: CommonFlags) => {
      const ctl = findControlSocket(flags.socket, io.env);
      if (name.length === 0) throw new UsageError('a key name is needed');
      const pass = await readPassphrase(`Enter passphrase for key "${safe(name)}": `, process.stdin, process.stderr);
      const b64 = pass.toString('base64');
      pass.fill(0);
      const r = await controlRequest(ctl, 'unlock-key', { name, passphrase: b64 }, 120_000);
      print(flags, r, () => `key ${safe(name)} decrypted`);
    });

  return [status, keys, reload, unlock].map((c) =>
    c.exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err }).showHelpAfterError(),
  );
}
