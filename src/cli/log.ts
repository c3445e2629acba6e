/**
 * `tsagent log` (POLICY.md §5): the audit log, newest last, as an aligned table or (--json)
 * one record a line; `-f` keeps printing records as they are appended. Reads the audit file
 * directly (default $XDG_STATE_HOME/tsagent/audit.jsonl, or --file), so it works whether or
 * not an agent runs.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { AuditRecord } from '../agent/ports';
import { Tail, followAudit } from '../audit/follow';
import { matchesFilter, parseSince, readAuditRecords } from '../audit/query';
import type { AuditFilter } from '../audit/query';
import { loadConfig } from '../policy/config';
import { columnWidths, formatRow, formatTable, tableRow, TABLE_HEADER } from '../audit/table';
import type { Io } from './start';

interface LogFlags {
  readonly file?: string;
  readonly config?: string;
  readonly key?: string;
  readonly host?: string;
  readonly process?: string;
  readonly since?: Date;
  readonly decision?: string;
  readonly follow?: boolean;
  readonly json?: boolean;
  readonly interval?: string;
}

export interface LogRun {
  /** Aborts `-f`. */
  readonly signal?: AbortSignal;
  /** The audit file when --file is not given. Default: the config's `[audit] file` (POLICY.md §2). */
  readonly auditPath?: (env: NodeJS.ProcessEnv) => string;
}

function filterOf(flags: LogFlags): AuditFilter {
  return {
    ...(flags.key !== undefined ? { key: flags.key } : {}),
    ...(flags.host !== undefined ? { host: flags.host } : {}),
    ...(flags.process !== undefined ? { process: flags.process } : {}),
    ...(flags.since !== undefined ? { since: flags.since } : {}),
    ...(flags.decision !== undefined ? { decision: flags.decision } : {}),
  };
}

export async function runLog(flags: LogFlags, io: Io, run: LogRun = {}): Promise<void> {
  const path = flags.file ?? (run.auditPath ?? ((env) => configuredAuditPath(flags.config, env)))(io.env);
  const filter = filterOf(flags);
  // With -f the current file is read through the follower, so what it shows next starts
  // exactly where the table ends.
  const tail = flags.follow === true ? new Tail(path) : undefined;
  const records = readAuditRecords(path, tail?.openAndReadExisting()).filter((r) => matchesFilter(r, filter));
  const line = (r: AuditRecord): string => `${JSON.stringify(r)}\n`;
  if (flags.json === true) io.out(records.map(line).join(''));
  else io.out(formatTable(records));
  if (flags.follow !== true) return;
  const widths = columnWidths([[...TABLE_HEADER], ...records.map(tableRow)]);
  const interval = flags.interval !== undefined ? Number(flags.interval) : undefined;
  await followAudit(
    path,
    (r) => {
      if (!matchesFilter(r, filter)) return;
      io.out(flags.json === true ? line(r) : `${formatRow(tableRow(r), widths)}\n`);
    },
    {
      ...(interval !== undefined && Number.isFinite(interval) && interval > 0 ? { intervalMs: interval } : {}),
      ...(run.signal !== undefined ? { signal: run.signal } : {}),
    },
    tail,
  );
}

/**
 * The config's `[audit] file` (`--config FILE`, else the XDG path; the default path when no
 * file exists). An invalid config is an error naming file, line and key, as for the agent.
 */
function configuredAuditPath(configPath: string | undefined, env: NodeJS.ProcessEnv): string {
  return loadConfig(configPath, env).audit.file;
}

function sinceArgument(value: string): Date {
  try {
    return parseSince(value);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
  }
}

export function logCommand(io: Io, run: Omit<LogRun, 'signal'> = {}): Command {
  return new Command('log')
    .description('show the audit log (newest last): which program used which key, for which host, and what was decided')
    .option('--file <path>', "the audit file (default: the config's [audit] file, else $XDG_STATE_HOME/tsagent/audit.jsonl)")
    .option('--config <file>', 'the configuration file naming the audit file (default: $XDG_CONFIG_HOME/tsagent/config.toml)')
    .option('--key <key>', 'only records for this key: name, comment or fingerprint (patterns * ?)')
    .option('--host <host>', 'only records for this destination host, name, hop or host key fingerprint (patterns)')
    .option('--process <program>', 'only records from this program: exe path or basename (patterns)')
    .option('--since <when>', 'only records since a duration ago (90s, 15m, 1h30m, 2d) or an ISO time', sinceArgument)
    .addOption(new Option('--decision <decision>', 'only records with this decision').choices(['allow', 'deny', 'fail']))
    .option('-f, --follow', 'keep printing records as they are written')
    .option('--json', 'one JSON record a line')
    .addOption(new Option('--interval <ms>', 'polling interval for -f').hideHelp())
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .action(async (flags: LogFlags) => {
      await runLog(flags, io, run);
    });
}
