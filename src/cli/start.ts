/**
 * `tsagent start`: the ssh-agent command line (see ../shared CLI.md). Three ways to run:
 * background (default: fork a detached child, print the eval-able lines, return), foreground
 * (-D/-d), and command mode (run a command with the agent's variables set, stop with it).
 */
import { spawn } from 'node:child_process';
import { rmdirSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { SocketError, UsageError } from '../errors';
import type { FingerprintHash } from '../keys/fingerprint';
import { createLogger, silentLogger } from '../log';
import type { Logger } from 'pino';
import type { ListenTarget } from '../server/agent-server';
import { defaultSocketLocation } from '../server/socket-path';
import type { SocketLocation } from '../server/socket-path';
import { parseLifetime } from './lifetime';
import { activationTarget, runAgent } from './run-agent';
import type { RunningAgent } from './run-agent';
import { detectShell, killLines, startLines } from './shell-output';
import type { ShellStyle } from './shell-output';

export interface StartFlags {
  readonly a?: string;
  readonly s?: boolean;
  readonly c?: boolean;
  readonly D?: boolean;
  readonly d?: boolean;
  readonly t?: string;
  readonly E?: string;
  readonly k?: boolean;
  /** Internal: this process is the detached background child. */
  readonly daemonChild?: boolean;
  /** Internal: the socket's directory, to make private (and create if missing). */
  readonly ownedDir?: string;
  /** Internal: the parent created `ownedDir` (mkdtemp), so it is removed at exit. */
  readonly dirCreated?: boolean;
}

export interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly exit: (code: number) => void;
  /** argv[1]: the script to re-run for the background child. */
  readonly script: string;
}

/** How long the parent waits for the background child to report its socket is ready. */
const CHILD_READY_TIMEOUT_MS = 15_000;

interface Settings {
  readonly shell: ShellStyle;
  readonly lifetime: number | undefined;
  readonly hash: FingerprintHash;
}

function settingsFrom(flags: StartFlags, env: NodeJS.ProcessEnv): Settings {
  if (flags.s && flags.c) throw new UsageError('-c and -s are mutually exclusive');
  const hash = flags.E ?? 'sha256';
  if (hash !== 'sha256' && hash !== 'md5') throw new UsageError(`Invalid hash algorithm "${hash}"`);
  const lifetime = flags.t === undefined ? undefined : parseLifetime(flags.t);
  const shell: ShellStyle = flags.c ? 'csh' : flags.s ? 'sh' : detectShell(env);
  return { shell, lifetime, hash };
}

function location(flags: StartFlags, env: NodeJS.ProcessEnv): SocketLocation {
  if (flags.a !== undefined) return { path: flags.a, ownedDir: flags.ownedDir, dirCreated: flags.dirCreated };
  return defaultSocketLocation(env, process.pid);
}

function kill(settings: Settings, io: Io): void {
  const raw = io.env.SSH_AGENT_PID;
  if (raw === undefined || raw === '') throw new UsageError('SSH_AGENT_PID not set, cannot kill agent');
  const pid = Number(raw);
  if (!Number.isInteger(pid) || pid < 1) throw new UsageError(`SSH_AGENT_PID=${raw}, which is not a good PID`);
  try {
    process.kill(pid, 'SIGTERM');
  } catch (err) {
    throw new UsageError(`kill: ${(err as NodeJS.ErrnoException).code ?? 'failed'}`, { cause: err });
  }
  io.out(killLines(settings.shell, pid));
}

export async function start(flags: StartFlags, command: readonly string[], io: Io): Promise<void> {
  const settings = settingsFrom(flags, io.env);
  if (flags.k) return kill(settings, io);
  if (flags.daemonChild) return runDaemonChild(flags, settings, io);
  if (command.length > 0) return runCommand(flags, settings, command, io);
  if (flags.D || flags.d) return runForeground(flags, settings, io);
  return runBackground(flags, settings, io);
}

/**
 * Runs the agent in this process on `target`; if it cannot start, removes the socket
 * directory made for it and rethrows.
 */
async function serve(
  target: ListenTarget,
  loc: SocketLocation | undefined,
  settings: Settings,
  logger: Logger,
  stopOnSigint: boolean,
  io: Io,
): Promise<RunningAgent> {
  try {
    return await runAgent(
      { target, defaultLifetimeSeconds: settings.lifetime, fingerprintHash: settings.hash, logger, stopOnSigint },
      io.exit,
    );
  } catch (err) {
    cleanupDir(loc);
    throw err;
  }
}

async function runForeground(flags: StartFlags, settings: Settings, io: Io): Promise<void> {
  const logger = createLogger(flags.d ? 'debug' : 'info');
  const activated = activationTarget(io.env, process.pid);
  const loc = activated === undefined ? location(flags, io.env) : undefined;
  await serve(activated ?? { kind: 'path', ...loc! }, loc, settings, logger, true, io);
  if (loc !== undefined) io.out(startLines(settings.shell, loc.path, process.pid, true));
}

async function runCommand(flags: StartFlags, settings: Settings, command: readonly string[], io: Io): Promise<void> {
  const loc = location(flags, io.env);
  const logger = flags.d ? createLogger('debug') : silentLogger();
  const agent = await serve({ kind: 'path', ...loc }, loc, settings, logger, false, io);
  const child = spawn(command[0]!, command.slice(1), {
    stdio: 'inherit',
    env: { ...io.env, SSH_AUTH_SOCK: loc.path, SSH_AGENT_PID: String(process.pid) },
  });
  child.on('error', (err: NodeJS.ErrnoException) => {
    io.err(`tsagent: ${command[0]}: ${err.code ?? err.message}\n`);
    void agent.stop().then(() => io.exit(127));
  });
  child.on('exit', (code, signal) => {
    // Like a shell: a command killed by a signal exits 128 + the signal number.
    const status = code ?? 128 + (signal ? constants.signals[signal] : 0);
    void agent.stop().then(() => io.exit(status));
  });
}

/** The detached child: serve, tell the parent over IPC that the socket is ready, go quiet. */
async function runDaemonChild(flags: StartFlags, settings: Settings, io: Io): Promise<void> {
  const loc = location(flags, io.env);
  process.chdir('/');
  const logger = flags.d ? createLogger('debug') : silentLogger();
  let agent;
  try {
    agent = await serve({ kind: 'path', ...loc }, undefined, settings, logger, false, io);
  } catch (err) {
    process.send?.({ error: err instanceof Error ? err.message : String(err) });
    process.disconnect?.();
    io.exit(1);
    return;
  }
  // The parent prints the warnings: this process has no terminal.
  process.send?.({ ready: true, pid: process.pid, warnings: agent.warnings }, () => process.disconnect?.());
}

async function runBackground(flags: StartFlags, settings: Settings, io: Io): Promise<void> {
  const loc = location(flags, io.env);
  // The child chdirs to / (so it holds no mount busy): give it absolute paths. The printed
  // path stays as the user wrote it, as ssh-agent prints it.
  const args = [io.script, 'start', '--daemon-child', '-a', resolve(loc.path), '-E', settings.hash];
  if (loc.ownedDir !== undefined) args.push('--owned-dir', resolve(loc.ownedDir));
  if (loc.dirCreated === true) args.push('--dir-created');
  if (settings.lifetime !== undefined) args.push('-t', String(settings.lifetime));
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: io.env });
  const outcome = await new Promise<{ pid: number; warnings: readonly string[] } | { error: string }>((resolve) => {
    const timer = setTimeout(() => resolve({ error: 'agent did not start in time' }), CHILD_READY_TIMEOUT_MS);
    child.once('message', (m: unknown) => {
      clearTimeout(timer);
      const msg = m as { ready?: boolean; pid?: number; error?: string; warnings?: unknown };
      const warnings = Array.isArray(msg.warnings) ? msg.warnings.filter((w): w is string => typeof w === 'string') : [];
      resolve(msg.ready && typeof msg.pid === 'number' ? { pid: msg.pid, warnings } : { error: msg.error ?? 'agent failed to start' });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ error: `agent exited with code ${code ?? 'unknown'}` });
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ error: err.message });
    });
  });
  if ('error' in outcome) {
    if (child.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
    cleanupDir(loc);
    throw new SocketError(outcome.error);
  }
  child.removeAllListeners();
  if (child.connected) child.disconnect();
  child.unref();
  for (const w of outcome.warnings) io.err(`tsagent: warning: ${w}\n`);
  io.out(startLines(settings.shell, loc.path, outcome.pid, false));
}

/** Removes the socket directory if this start created it (mkdtemp); never one it found. */
function cleanupDir(loc: SocketLocation | undefined): void {
  if (loc?.ownedDir === undefined || loc.dirCreated !== true) return;
  try {
    rmdirSync(loc.ownedDir);
  } catch {
    /* non-empty or gone */
  }
}
