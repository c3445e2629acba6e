/**
 * The two agents as real processes: OpenSSH's `ssh-agent -D -a SOCK` and tsagent's
 * `node bin/tsagent.js start -D -a SOCK`, each in a fresh 0700 temp dir with a clean
 * environment. Every child is remembered and killed by its PID — on stop(), on error, on
 * SIGINT/SIGTERM/SIGHUP and at exit — and every temp dir is removed.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { findPeer } from '../test/helpers/peers';
import { socketAccepts } from '../test/helpers/proc';

export type Impl = 'openssh' | 'tsagent';
export const IMPLS: readonly Impl[] = ['openssh', 'tsagent'];

/** bin/tsagent.js, from dist/bench/procs.js. */
export const TSAGENT_BIN = resolve(__dirname, '../../bin/tsagent.js');

// ---------------------------------------------------------------------------------------
// bookkeeping: everything started here dies by PID, whatever happens

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();

function alive(c: ChildProcess): boolean {
  return c.pid !== undefined && c.exitCode === null && c.signalCode === null;
}

/** SIGKILLs every child still running (by PID) and removes every temp dir. Synchronous. */
export function killEverything(): void {
  for (const c of liveChildren) {
    if (alive(c) && c.pid !== undefined) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  liveChildren.clear();
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  liveDirs.clear();
}

let handlersInstalled = false;
/** Installs the exit / signal handlers once (the signals exit with 128 + n after cleanup). */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killEverything);
  const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping the agents\n`);
      killEverything();
      process.exit(codes[sig]);
    });
  }
}

// ---------------------------------------------------------------------------------------
// small helpers

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Absolute path of OpenSSH's ssh-agent, found like every other real peer the tests use. */
export function findSshAgent(): string | undefined {
  return findPeer('ssh-agent');
}

/**
 * The start of every bench script that drives OpenSSH's agent: cleanup handlers installed,
 * then ssh-agent's path, or undefined after saying it is missing (the script then exits 2).
 */
export function benchSshAgent(script: string): string | undefined {
  installCleanupHandlers();
  const sshAgent = findSshAgent();
  if (sshAgent === undefined)
    process.stderr.write(`${script}: OpenSSH ssh-agent not found (apt-get install -y openssh-client)\n`);
  return sshAgent;
}

/** A new 0700 directory (mkdtemp), removed by killEverything() if nobody removes it first. */
export function privateTempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  liveDirs.add(d);
  return d;
}

export function removeTempDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  liveDirs.delete(d);
}

// ---------------------------------------------------------------------------------------
// /proc readings

/** VmRSS / VmHWM of a process in KiB (Linux). */
export function memoryKiB(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/** Clock ticks per second for /proc/PID/stat (USER_HZ: 100 on every Linux port that matters). */
const USER_HZ = 100;

/** CPU time (all threads) a process has used so far, in milliseconds: user and system. */
export function cpuTimeMs(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(rest[11]) * 1000) / USER_HZ, sys: (Number(rest[12]) * 1000) / USER_HZ };
}

// ---------------------------------------------------------------------------------------
// agents

export interface AgentProc {
  readonly impl: Impl;
  readonly pid: number;
  readonly socketPath: string;
  readonly dir: string;
  /** The last 64 KiB the agent wrote on stderr. */
  stderr(): string;
  alive(): boolean;
  /** SIGTERM by PID, SIGKILL after 3 s, wait for the exit, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface SpawnedAgent extends AgentProc {
  /** process.hrtime.bigint() just before spawn(). */
  readonly spawnedAt: bigint;
}

function command(impl: Impl, sshAgent: string, socketPath: string, dir: string, opts: SpawnOptions): [string, string[]] {
  return impl === 'openssh'
    ? [sshAgent, ['-D', '-a', socketPath]]
    : [
        process.execPath,
        [...(opts.nodeArgs ?? []), opts.bin ?? TSAGENT_BIN, 'start', '-D', '-a', socketPath, ...(opts.prepare?.(dir) ?? [])],
      ];
}

export interface SpawnOptions {
  /** Extra node options before the script (tsagent only), e.g. ['--cpu-prof']. */
  readonly nodeArgs?: readonly string[];
  /** Another tsagent launcher to run instead of bin/tsagent.js (to compare builds). */
  readonly bin?: string;
  /** Writes files into the agent's fresh dir (its HOME) before the spawn; returns extra `start` arguments (tsagent only). */
  readonly prepare?: (dir: string) => readonly string[];
}

/** Spawns an agent on a fresh socket; does not wait for it (see waitReady). */
export function spawnAgent(impl: Impl, sshAgent: string, opts: SpawnOptions = {}): SpawnedAgent {
  const dir = privateTempDir(impl === 'openssh' ? 'tsb-ossh-' : 'tsb-ts-');
  const socketPath = join(dir, 'agent.sock');
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir };
  const [cmd, args] = command(impl, sshAgent, socketPath, dir, opts);
  const spawnedAt = process.hrtime.bigint();
  const child = spawn(cmd, args, { env, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], shell: false });
  child.on('error', () => {
    /* surfaces as an exit / readiness failure with stderr */
  });
  if (child.pid === undefined) {
    removeTempDir(dir);
    throw new Error(`cannot start ${cmd}`);
  }
  liveChildren.add(child);
  const pid = child.pid;
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err += s;
    if (err.length > 65536) err = err.slice(-65536);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (alive(child)) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* gone */
        }
        const done = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]);
        if (!done && alive(child)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
          await Promise.race([exited, sleep(5000)]);
        }
      }
      liveChildren.delete(child);
      removeTempDir(dir);
    })();
    return stopping;
  };
  return { impl, pid, socketPath, dir, spawnedAt, stderr: () => err, alive: () => alive(child), stop };
}

/**
 * Polls (every `intervalMs`) until the agent's socket accepts a connection; returns the
 * time from spawn to the first accepted connect in ms. Fails fast if the agent exits.
 */
export async function waitReady(a: SpawnedAgent, timeoutMs = 15_000, intervalMs = 1): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!a.alive()) throw new Error(`${a.impl} (pid ${a.pid}) exited before its socket was ready\n${a.stderr()}`);
    if (await socketAccepts(a.socketPath)) return Number(process.hrtime.bigint() - a.spawnedAt) / 1e6;
    if (Date.now() > deadline) throw new Error(`${a.impl} (pid ${a.pid}): socket not ready after ${timeoutMs} ms\n${a.stderr()}`);
    await sleep(intervalMs);
  }
}

/** Spawns an agent and waits until it serves. */
export async function startAgent(impl: Impl, sshAgent: string, opts: SpawnOptions = {}): Promise<AgentProc> {
  const a = spawnAgent(impl, sshAgent, opts);
  try {
    await waitReady(a, 15_000, 10);
  } catch (e) {
    await a.stop();
    throw e;
  }
  return a;
}

/** Startup time to socket ready: spawn, poll the socket every ~1 ms, stop. One sample, in ms. */
export async function measureStartup(impl: Impl, sshAgent: string, opts: SpawnOptions = {}): Promise<number> {
  const a = spawnAgent(impl, sshAgent, opts);
  try {
    return await waitReady(a, 15_000, 1);
  } finally {
    await a.stop();
  }
}

/** Runs a command to its exit (bounded to 15 s, then SIGKILL by PID); its stdout and the time taken. */
function timedRun(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((resolveRun, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'ignore'], shell: false });
    liveChildren.add(child);
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
    const timer = setTimeout(() => {
      if (alive(child) && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, 15_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      reject(e);
    });
    child.once('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      liveChildren.delete(child);
      child.stdout?.once('end', () => resolveRun({ ms, code, out }));
      if (child.stdout === null || child.stdout.readableEnded) resolveRun({ ms, code, out });
    });
  });
}

/** A bare Node start, `node -e 0`, spawn to exit: the floor under any Node program's start. One sample, in ms. */
export async function measureNodeBaseline(): Promise<number> {
  const dir = privateTempDir('tsb-node-');
  try {
    return (await timedRun(process.execPath, ['-e', '0'], { PATH: process.env.PATH ?? '/usr/bin:/bin' }, dir)).ms;
  } finally {
    removeTempDir(dir);
  }
}

/**
 * The login path: `ssh-agent -s -a SOCK` / `tsagent start -s -a SOCK` (background mode, as
 * `eval "$(…)"` runs it) from spawn to the exit of the command, when the socket is ready and
 * the lines are printed. The background agent is then killed by the PID it printed. One sample, in ms.
 */
export async function measureBackgroundStart(impl: Impl, sshAgent: string, opts: SpawnOptions = {}): Promise<number> {
  const dir = privateTempDir(impl === 'openssh' ? 'tsb-ossh-bg-' : 'tsb-ts-bg-');
  const socketPath = join(dir, 'agent.sock');
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir };
  const [cmd, args] =
    impl === 'openssh'
      ? [sshAgent, ['-s', '-a', socketPath]]
      : [process.execPath, [...(opts.nodeArgs ?? []), opts.bin ?? TSAGENT_BIN, 'start', '-s', '-a', socketPath]];
  let pid: number | undefined;
  try {
    const r = await timedRun(cmd, args, env, dir);
    const m = /SSH_AGENT_PID=(\d+)/.exec(r.out);
    if (r.code !== 0 || m === null) throw new Error(`${impl} background start failed (exit ${r.code}): ${r.out}`);
    pid = Number(m[1]);
    if (!(await socketAccepts(socketPath))) throw new Error(`${impl}: background start returned before its socket was ready`);
    return r.ms;
  } finally {
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      // The agent removes its socket as it exits; give it a moment before the dir goes.
      for (let i = 0; i < 300 && pidAlive(pid); i++) await sleep(10);
      if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    removeTempDir(dir);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `ssh -V` (OpenSSH prints its version on stderr). */
export async function opensshVersion(): Promise<string> {
  return new Promise((r) => {
    const c = spawn('ssh', ['-V'], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    let s = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (s += d));
    // Bounded like every other wait here: a stuck `ssh -V` is killed by PID.
    const timer = setTimeout(() => c.pid !== undefined && c.exitCode === null && process.kill(c.pid, 'SIGKILL'), 10_000);
    c.on('error', () => r('unknown'));
    c.on('close', () => {
      clearTimeout(timer);
      r(s.trim() || 'unknown');
    });
  });
}

/**
 * The entry of a bench script run as `node dist/bench/NAME.js ARGS`: parses the arguments
 * (a throw is a usage error, exit 2), runs `main`, exits with its code; on failure kills
 * every agent by PID and exits 1.
 */
export function runScript<O>(
  name: string,
  usage: string,
  parse: (argv: readonly string[]) => O,
  main: (o: O) => Promise<number>,
): void {
  let o: O;
  try {
    o = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${name}: ${e instanceof Error ? e.message : String(e)}\n${usage}`);
    process.exit(2);
  }
  main(o).then(
    (code) => process.exit(code),
    (err: unknown) => {
      killEverything();
      process.stderr.write(`${name}: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
