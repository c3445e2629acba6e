/**
 * `tsagent start`: the ssh-agent command line (see ../shared CLI.md). Three ways to run:
 * background (default: fork a detached child, print the eval-able lines, return), foreground
 * (-D/-d), and command mode (run a command with the agent's variables set, stop with it).
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { rmdirSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { SocketError, UsageError } from '../errors';
import type { FingerprintHash } from '../keys/fingerprint';
import { createLogger, silentLogger } from '../log';
import type { Logger } from '../log';
import type { ListenTarget } from '../server/agent-server';
import { ACTIVATION_VARIABLES, activatedSockets, controlSocketPath } from '../server/activation';
import { socketFd } from '../server/peer-check';
import { claimSocketPath, defaultSocketLocation, ensurePrivateDir, isWindowsPipe, listenPrivate } from '../stream/socket-path';
import type { SocketLocation } from '../stream/socket-path';
import { expandPath } from '../policy/config';
import { loadPolicyState } from './daemon-control';
import { MALLOC_ARENA_VARIABLE, daemonChildEnv, limitMallocArenas } from './harden';
import type { PolicyState } from './daemon-control';
import { parseLifetime } from './lifetime';
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
  /** PKCS#11 provider allowlist (OpenSSH pattern-list). */
  readonly P?: string;
  /** ssh-agent -O options. */
  readonly O?: readonly string[];
  /** `--config FILE` (POLICY.md §2); default: the XDG path, when it exists. */
  readonly config?: string;
  /** Internal: this process is the detached background child. */
  readonly daemonChild?: boolean;
  /** Internal: the socket's directory, to make private (and create if missing). */
  readonly ownedDir?: string;
  /** Internal: the parent created `ownedDir` (mkdtemp), so it is removed at exit. */
  readonly dirCreated?: boolean;
  /** Internal: the parent bound the sockets at -a and its .ctl; they are fds 3 and 4. */
  readonly inheritedSockets?: boolean;
  /** Daemon child: the parent set MALLOC_ARENA_MAX for it (harden.ts daemonChildEnv). */
  readonly arenaLimitSet?: boolean;
}

export interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly exit: (code: number) => void;
  /** argv[1]: the script to re-run for the background child. */
  readonly script: string;
}

/** node:child_process, loaded when a start spawns something (not on the `-D` start path). */
function spawn(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  return (require('node:child_process') as typeof import('node:child_process')).spawn(command, args, options);
}

/** How long the parent waits for the background child to report its socket is ready. */
const CHILD_READY_TIMEOUT_MS = 15_000;

interface Settings {
  readonly shell: ShellStyle;
  readonly lifetime: number | undefined;
  readonly hash: FingerprintHash;
  readonly allowedProviders: string | undefined;
  readonly allowRemotePkcs11: boolean;
  /** The validated config, loaded before any socket exists (an invalid file exits 1 first). */
  readonly policy?: { readonly path: string | undefined; readonly state: PolicyState; readonly env: NodeJS.ProcessEnv };
}

/** ssh-agent's -O options: only allow-remote-pkcs11 means something here (the rest is FIDO). */
function agentOptions(options: readonly string[]): { allowRemotePkcs11: boolean } {
  let allowRemotePkcs11 = false;
  for (const o of options) {
    if (o === 'allow-remote-pkcs11') allowRemotePkcs11 = true;
    else if (o !== 'no-restrict-websafe' && !o.startsWith('websafe-allow=')) throw new UsageError(`Unknown -O option "${o}"`);
  }
  return { allowRemotePkcs11 };
}

function settingsFrom(flags: StartFlags, env: NodeJS.ProcessEnv): Settings {
  if (flags.s && flags.c) throw new UsageError('-c and -s are mutually exclusive');
  const hash = flags.E ?? 'sha256';
  if (hash !== 'sha256' && hash !== 'md5') throw new UsageError(`Invalid hash algorithm "${hash}"`);
  const lifetime = flags.t === undefined ? undefined : parseLifetime(flags.t);
  const shell: ShellStyle = flags.c ? 'csh' : flags.s ? 'sh' : detectShell(env);
  return { shell, lifetime, hash, allowedProviders: flags.P, ...agentOptions(flags.O ?? []) };
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
  const policy = { path: flags.config, state: loadPolicyState(flags.config, io.env), env: io.env };
  // `-t` wins over the config's `[agent] lifetime` ("0" there means forever, as no -t).
  const lifetime = settings.lifetime ?? (policy.state.config.agent.lifetimeSeconds || undefined);
  return startWith(flags, { ...settings, lifetime, policy }, command, io);
}

function startWith(flags: StartFlags, settings: Settings, command: readonly string[], io: Io): Promise<void> {
  if (flags.daemonChild) return runDaemonChild(flags, settings, io);
  if (command.length > 0) return runCommand(flags, settings, command, io);
  if (flags.D || flags.d) return runForeground(flags, settings, io);
  return runBackground(flags, settings, io);
}

/** The agent and control listen targets of a run, see RunAgentOptions. */
interface Targets {
  readonly target: ListenTarget;
  readonly control: ListenTarget | undefined;
}

/** Listening on a path of our own: the control socket goes next to it. */
function pathTargets(loc: SocketLocation): Targets {
  return {
    target: { kind: 'path', ...loc },
    control: { kind: 'path', path: controlSocketPath(loc.path), ownedDir: loc.ownedDir },
  };
}

/**
 * Socket activation: the fds systemd passed, picked by name (LISTEN_FDNAMES). Without a
 * "control" fd (older units, systemd-socket-activate) the control socket goes next to the
 * -a path, when one was given. The LISTEN_* variables are removed, so children (askpass) do
 * not inherit them (sd_listen_fds(3) does the same).
 */
function activationTargets(flags: StartFlags, env: NodeJS.ProcessEnv): Targets | undefined {
  const fds = activatedSockets(env, process.pid);
  if (fds === undefined) return undefined;
  for (const v of ACTIVATION_VARIABLES) delete env[v];
  const control: ListenTarget | undefined =
    fds.control !== undefined
      ? { kind: 'fd', fd: fds.control }
      : flags.a === undefined
        ? undefined
        : { kind: 'path', path: controlSocketPath(flags.a) };
  return { target: { kind: 'fd', fd: fds.agent }, control };
}

/**
 * Runs the agent in this process on `targets`; if it cannot start, removes the socket
 * directory made for it and rethrows.
 */
async function serve(
  targets: Targets,
  loc: SocketLocation | undefined,
  settings: Settings,
  logger: Logger,
  stopOnSigint: boolean,
  io: Io,
): Promise<RunningAgent> {
  // One malloc arena (harden.ts), before the agent's work starts threads.
  limitMallocArenas(io.env);
  // Loaded here, not at the top: the parent of a background start never runs the agent.
  const { runAgent } = require('./run-agent') as typeof import('./run-agent');
  try {
    return await runAgent(
      {
        ...targets,
        defaultLifetimeSeconds: settings.lifetime,
        fingerprintHash: settings.hash,
        logger,
        stopOnSigint,
        pkcs11: { allowedProviders: settings.allowedProviders, allowRemoteAdd: settings.allowRemotePkcs11 },
        ...(settings.policy === undefined ? {} : { policy: settings.policy }),
      },
      io.exit,
    );
  } catch (err) {
    cleanupDir(loc);
    throw err;
  }
}

async function runForeground(flags: StartFlags, settings: Settings, io: Io): Promise<void> {
  const logger = createLogger(flags.d ? 'debug' : 'info');
  const activated = activationTargets(flags, io.env);
  const loc = activated === undefined ? location(flags, io.env) : undefined;
  await serve(activated ?? pathTargets(loc!), loc, settings, logger, true, io);
  if (loc !== undefined) io.out(startLines(settings.shell, loc.path, process.pid, true));
}

async function runCommand(flags: StartFlags, settings: Settings, command: readonly string[], io: Io): Promise<void> {
  const loc = location(flags, io.env);
  const logger = flags.d ? createLogger('debug') : silentLogger();
  const agent = await serve(pathTargets(loc), loc, settings, logger, false, io);
  const child = spawn(command[0], command.slice(1), {
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

/** The sockets a background start's parent bound and handed down as fds 3 and 4. */
const INHERITED_AGENT_FD = 3;
const INHERITED_CONTROL_FD = 4;

function inheritedTargets(loc: SocketLocation): Targets {
  return {
    target: { kind: 'fd', fd: INHERITED_AGENT_FD, boundAt: loc },
    control: { kind: 'fd', fd: INHERITED_CONTROL_FD, boundAt: { path: controlSocketPath(loc.path) } },
  };
}

/**
 * The detached child. With inherited sockets (Unix) it serves them and nobody waits for it;
 * otherwise (Windows pipes) it binds, tells the parent over IPC that the socket is ready,
 * and goes quiet.
 */
async function runDaemonChild(flags: StartFlags, settings: Settings, io: Io): Promise<void> {
  const loc = location(flags, io.env);
  // glibc read it at this process's start; the programs the agent runs must not inherit it.
  if (flags.arenaLimitSet) delete io.env[MALLOC_ARENA_VARIABLE];
  process.chdir('/');
  const logger = flags.d ? createLogger('debug') : silentLogger();
  let agent;
  try {
    agent = await serve(
      flags.inheritedSockets ? inheritedTargets(loc) : pathTargets(loc),
      undefined,
      settings,
      logger,
      false,
      io,
    );
  } catch (err) {
    if (flags.inheritedSockets) {
      // Nobody is listening for an answer: take the sockets away, so clients see no agent.
      unlinkQuietly(controlSocketPath(loc.path));
      unlinkQuietly(loc.path);
      cleanupDir(loc);
    }
    process.send?.({ error: err instanceof Error ? err.message : String(err) });
    process.disconnect?.();
    io.exit(1);
    return;
  }
  // The parent prints the warnings: this process has no terminal.
  process.send?.({ ready: true, pid: process.pid, warnings: agent.warnings }, () => process.disconnect?.());
}

/** The child's command line: the settings of this start, with absolute paths. */
function daemonChildArgs(flags: StartFlags, settings: Settings, loc: SocketLocation, io: Io): string[] {
  const args = [io.script, 'start', '--daemon-child', '-a', resolve(loc.path), '-E', settings.hash];
  if (loc.ownedDir !== undefined) args.push('--owned-dir', resolve(loc.ownedDir));
  if (loc.dirCreated === true) args.push('--dir-created');
  if (settings.lifetime !== undefined) args.push('-t', String(settings.lifetime));
  if (settings.allowedProviders !== undefined) args.push('-P', settings.allowedProviders);
  if (settings.allowRemotePkcs11) args.push('-O', 'allow-remote-pkcs11');
  if (flags.config !== undefined) args.push('--config', expandPath(flags.config, io.env, process.cwd()));
  return args;
}

/**
 * `eval "$(tsagent start)"`, as ssh-agent does it: the sockets are bound here, before the
 * agent runs, and the detached child inherits them (fds 3 and 4). When this command exits,
 * SSH_AUTH_SOCK already accepts connections; the first request is answered once the child is
 * up. The login pays one Node start instead of two in a row. The config was validated
 * before (start()), so an invalid file still fails this command.
 */
async function runBackground(flags: StartFlags, settings: Settings, io: Io): Promise<void> {
  const loc = location(flags, io.env);
  if (isWindowsPipe(loc.path)) return runBackgroundWaiting(flags, settings, loc, io);
  let dirCreated = loc.dirCreated === true;
  if (loc.ownedDir !== undefined && ensurePrivateDir(loc.ownedDir)) dirCreated = true;
  const owned: SocketLocation = { ...loc, dirCreated };
  const control = createServer();
  const agent = createServer();
  let child: ChildProcess;
  try {
    // The agent's path is checked first, so a live agent or a file there is what the error
    // names; then the control socket is bound before the agent socket, as run-agent does.
    await claimSocketPath(loc.path);
    await claimSocketPath(controlSocketPath(loc.path));
    await listenPrivate(control, controlSocketPath(loc.path));
    await claimSocketPath(loc.path);
    await listenPrivate(agent, loc.path);
    const args = daemonChildArgs(flags, settings, owned, io);
    args.push('--inherited-sockets');
    // One malloc arena (harden.ts); a value the user set wins, and one set here is dropped
    // by the child once it runs.
    const { env, injected } = daemonChildEnv(io.env);
    if (injected) args.push('--arena-limit-set');
    // From the listen above to the exit below this process never returns to its event loop,
    // so it accepts no connection itself: they wait in the backlog for the agent. A spawn
    // that failed has no pid (the error event would only come on a later turn).
    child = spawn(process.execPath, args, {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', listenerFd(agent), listenerFd(control)],
      env,
    });
    if (child.pid === undefined) throw new SocketError('cannot start the agent process');
    child.on('error', () => undefined);
  } catch (err) {
    // Closing a bound listener removes its socket file (libuv).
    agent.close();
    control.close();
    cleanupDir(owned);
    if (err instanceof SocketError) throw err;
    throw new SocketError(`cannot start the agent: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
    });
  }
  child.unref();
  io.out(startLines(settings.shell, loc.path, child.pid, false));
  // Exit without closing the listeners: closing would remove the socket files the child
  // now serves.
  io.exit(0);
}

function listenerFd(server: Server): number {
  const fd = socketFd(server);
  if (fd === undefined) throw new SocketError('no descriptor for the listening socket');
  return fd;
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone */
  }
}

/** Windows: the child binds the pipe itself and reports over IPC; this process waits for it. */
async function runBackgroundWaiting(flags: StartFlags, settings: Settings, loc: SocketLocation, io: Io): Promise<void> {
  // The child chdirs to / (so it holds no mount busy): give it absolute paths. The printed
  // path stays as the user wrote it, as ssh-agent prints it.
  const args = daemonChildArgs(flags, settings, loc, io);
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: io.env });
  const outcome = await new Promise<{ pid: number; warnings: readonly string[] } | { error: string }>((resolve) => {
    const timer = setTimeout(() => resolve({ error: 'agent did not start in time' }), CHILD_READY_TIMEOUT_MS);
    child.once('message', (m: unknown) => {
      clearTimeout(timer);
      const msg = m as { ready?: boolean; pid?: number; error?: string; warnings?: unknown };
      const warnings = Array.isArray(msg.warnings) ? msg.warnings.filter((w): w is string => typeof w === 'string') : [];
      resolve(
        msg.ready && typeof msg.pid === 'number' ? { pid: msg.pid, warnings } : { error: msg.error ?? 'agent failed to start' },
      );
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
