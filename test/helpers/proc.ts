/**
 * Process helpers for interop tests: bounded `run`, long-running daemons with a kill-by-PID
 * `stop()`, bounded polling, Unix-socket / TCP readiness checks, temp dirs and free ports.
 *
 * Every child started here is recorded in a module-level registry; any still alive when the
 * test process exits (normally, or by SIGINT/SIGTERM/SIGHUP) is SIGKILLed by its PID.
 * No shell is ever involved: commands are spawned with an argv array.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { lstatSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

// ---------------------------------------------------------------------------------------------
// registry of live children

const live = new Set<ChildProcess>();

function isAlive(c: ChildProcess): boolean {
  return c.pid !== undefined && c.exitCode === null && c.signalCode === null;
}

function track(c: ChildProcess): void {
  if (c.pid === undefined) return;
  live.add(c);
  c.once('exit', () => live.delete(c));
}

/** SIGKILL every child started by these helpers that is still running (by PID). */
export function killAllChildren(): void {
  for (const c of live) {
    if (isAlive(c) && c.pid !== undefined) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  live.clear();
}

/** Number of helper-started children still running (for leak assertions in tests). */
export function liveChildCount(): number {
  let n = 0;
  for (const c of live) if (isAlive(c)) n++;
  return n;
}

process.on('exit', killAllChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = (): void => {
    killAllChildren();
    process.removeListener(sig, onSignal);
    // Nobody else handles it: re-raise so the default action (terminate) still happens.
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  };
  process.on(sig, onSignal);
}

// ---------------------------------------------------------------------------------------------
// small utilities

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fresh directory `os.tmpdir()/<prefix>XXXXXX` (fs.mkdtemp). Short, so socket paths fit in 108 bytes. */
export async function tempDir(prefix = 'tsagent-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * rm -rf, never throws for a missing path. Retries (up to ~2.7 s in all, only on error): a
 * test's after-hooks run in the order they were added, so a directory may be removed while a
 * process started later still writes into it, and rmdir then fails with ENOTEMPTY.
 */
export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
}

/**
 * Clean-ups that run last-registered first, like Go's `t.Cleanup` (node:test runs after-hooks
 * in the order they were added): register a directory's removal, then the processes that
 * write into it, and they are stopped before it is removed. Every clean-up runs; their
 * errors are thrown after the last one.
 */
export function deferred(t: Pick<TestContext, 'after'>): (cleanup: () => unknown) => void {
  const stack: Array<() => unknown> = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (let fn = stack.pop(); fn !== undefined; fn = stack.pop()) {
      try {
        await fn();
      } catch (e: unknown) {
        errors.push(e);
      }
    }
    if (errors.length === 1 && errors[0] instanceof Error) throw errors[0];
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} clean-ups failed`);
  });
  return (cleanup) => {
    stack.push(cleanup);
  };
}

/** A minimal environment: PATH (and HOME / extras if given), nothing inherited from the user's agent. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', ...extra };
}

function describeCmd(cmd: string, args: readonly string[]): string {
  const parts = [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)));
  const s = parts.join(' ');
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

/** Keeps the last `cap` bytes of a stream. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly cap: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > this.cap && this.chunks.length > 1) {
      const first = this.chunks.shift();
      if (first !== undefined) this.size -= first.length;
    }
  }
  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.cap)).toString('utf8');
  }
}

// ---------------------------------------------------------------------------------------------
// run: one bounded command

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed. Without it stdin is closed immediately (EOF). */
  input?: string | Buffer;
  /** Default 20000. On expiry the child is SIGKILLed by PID and the promise rejects. */
  timeoutMs?: number;
  cwd?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class RunTimeoutError extends Error {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`command timed out after ${timeoutMs} ms and was killed (SIGKILL): ${command}\nstderr: ${stderr.slice(-2000)}`);
    this.name = 'RunTimeoutError';
  }
}

/**
 * Runs `cmd args` without a shell and collects its output. Resolves with the exit code /
 * signal (a non-zero exit does NOT reject); rejects if it cannot be spawned or if it runs
 * longer than `timeoutMs`.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const command = describeCmd(cmd, args);
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
    });
    track(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {
      /* EPIPE when the child exits without reading stdin */
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();

    let settled = false;
    let closeGrace: NodeJS.Timeout | undefined;
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (closeGrace !== undefined) clearTimeout(closeGrace);
      f();
    };
    const result = (): RunResult => ({
      code: child.exitCode,
      signal: child.signalCode,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
    });

    const timer = setTimeout(() => {
      if (isAlive(child) && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* raced with exit */
        }
      }
      child.stdout.destroy();
      child.stderr.destroy();
      const r = result();
      finish(() => reject(new RunTimeoutError(command, timeoutMs, r.stdout, r.stderr)));
    }, timeoutMs);

    child.once('error', (e: Error) => finish(() => reject(new Error(`cannot run ${command}: ${e.message}`))));
    // 'close' = exited and all output read. A grandchild holding the pipes open must not hang
    // us: after 'exit', wait at most 2 s more for 'close'.
    child.once('close', () => finish(() => resolve(result())));
    child.once('exit', () => {
      closeGrace = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(() => resolve(result()));
      }, 2000);
    });
  });
}

function commandFailed(cmd: string, args: readonly string[], r: RunResult): Error {
  return new Error(
    `command failed (code ${r.code}, signal ${r.signal}): ${describeCmd(cmd, args)}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`,
  );
}

/** `run`, then throw (with stderr) unless it exited 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw commandFailed(cmd, args, r);
  return r;
}

/**
 * `runOk` for setup code that cannot await (module level, sync helpers): spawnSync without a
 * shell, SIGKILLed after `timeoutMs` (default 20000), throws unless it exited 0.
 */
export function runSyncOk(
  cmd: string,
  args: readonly string[],
  opts: Pick<RunOptions, 'env' | 'timeoutMs' | 'cwd'> = {},
): RunResult {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const r = spawnSync(cmd, [...args], {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    shell: false,
  });
  const result: RunResult = { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (r.error !== undefined)
    throw new Error(`cannot run ${describeCmd(cmd, args)}: ${r.error.message}\nstderr: ${result.stderr.slice(-2000)}`);
  if (r.status !== 0) throw commandFailed(cmd, args, result);
  return result;
}

// ---------------------------------------------------------------------------------------------
// daemons

export interface DaemonOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Capture stdout too (default: ignore it). */
  captureStdout?: boolean;
  /** Grace between SIGTERM and SIGKILL in stop(). Default 3000. */
  killGraceMs?: number;
  /** Name used in error messages (default: basename-ish command line). */
  name?: string;
}

export interface DaemonHandle {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly name: string;
  /** Everything (last 1 MiB) the daemon wrote to stderr so far. */
  stderr(): string;
  /** Captured stdout (only with captureStdout). */
  stdout(): string;
  /** True until the process has exited. */
  alive(): boolean;
  /** Resolves when the process exits (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM by PID, SIGKILL after the grace period, wait (bounded) for exit. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a long-running process (no shell). Rejects if it cannot be spawned. The caller
 * waits for readiness (waitForSocket / waitForPort) and must call stop().
 */
export async function startDaemon(cmd: string, args: readonly string[], opts: DaemonOptions = {}): Promise<DaemonHandle> {
  const name = opts.name ?? describeCmd(cmd, args);
  const grace = opts.killGraceMs ?? 3000;
  const child = spawn(cmd, [...args], {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['ignore', opts.captureStdout === true ? 'pipe' : 'ignore', 'pipe'],
    shell: false,
  });
  child.on('error', () => {
    /* reported via the spawn promise below / stderr(); never an unhandled 'error' */
  });
  const errTail = new Tail(1 << 20);
  const outTail = new Tail(1 << 20);
  child.stderr?.on('data', (b: Buffer) => errTail.push(b));
  child.stdout?.on('data', (b: Buffer) => outTail.push(b));

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => {
      if (child.pid === undefined) resolve({ code: null, signal: null });
    });
  });

  // Wait for 'spawn' or 'error' so an ENOENT is reported here, not as a silent dead handle.
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (e: Error) => reject(new Error(`cannot start ${name}: ${e.message}`)));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${name}: no pid`);
  track(child);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    if (stopping !== undefined) return stopping;
    stopping = (async () => {
      if (!isAlive(child)) return;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      const termWait = await Promise.race([exited.then(() => true), sleep(grace).then(() => false)]);
      if (termWait) return;
      if (isAlive(child)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      const killWait = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      if (!killWait) throw new Error(`${name} (pid ${pid}) did not exit 5 s after SIGKILL`);
    })();
    return stopping;
  };

  return {
    pid,
    child,
    name,
    stderr: () => errTail.toString(),
    stdout: () => outTail.toString(),
    alive: () => isAlive(child),
    exited,
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// bounded waits

export interface WaitForOptions {
  /** Default 10000. */
  timeoutMs?: number;
  /** Default 25. */
  intervalMs?: number;
  /** Shown in the timeout error: "timed out after N ms waiting for <what>". */
  what?: string;
}

/**
 * Polls `predicate` until it returns true; rejects after `timeoutMs`. A predicate that throws
 * counts as false (its last error is included in the timeout message).
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, opts: WaitForOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 25;
  const end = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      if (await predicate()) return;
    } catch (e: unknown) {
      lastErr = e;
    }
    if (Date.now() >= end) break;
    await sleep(Math.min(intervalMs, Math.max(1, end - Date.now())));
  }
  const why = lastErr instanceof Error ? ` (last error: ${lastErr.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}${why}`);
}

function tryConnect(opts: { path: string } | { port: number; host: string }, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = createConnection(opts);
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      s.destroy();
      resolve(false);
    });
  });
}

/** True if `path` is a Unix socket that accepts a connection right now (bounded to 1 s). */
export async function socketAccepts(path: string): Promise<boolean> {
  try {
    if (!lstatSync(path).isSocket()) return false;
  } catch {
    return false;
  }
  return tryConnect({ path }, 1000);
}

function diedCheck(daemon: DaemonHandle | ChildProcess | undefined, what: string): void {
  if (daemon !== undefined && 'exitCode' in daemon) {
    if (daemon.exitCode !== null || daemon.signalCode !== null) {
      throw new Error(`process ${daemon.pid} exited (code ${daemon.exitCode}, signal ${daemon.signalCode}) before ${what}`);
    }
    return;
  }
  if (daemon !== undefined && !daemon.alive()) {
    const c = daemon.child;
    throw new Error(
      `${daemon.name} exited (code ${c.exitCode}, signal ${c.signalCode}) before ${what}\nstderr: ${daemon.stderr().slice(-4000)}`,
    );
  }
}

/**
 * Polls `accepts` until it is true (bounded); with `daemon`, fails fast with that process's
 * stderr if it exits first.
 */
async function waitForListener(
  what: string,
  accepts: () => Promise<boolean>,
  timeoutMs: number,
  daemon?: DaemonHandle | ChildProcess,
): Promise<void> {
  let died: Error | undefined;
  await waitFor(
    async () => {
      try {
        diedCheck(daemon, what);
      } catch (e: unknown) {
        died = e instanceof Error ? e : new Error(String(e));
        return true;
      }
      return accepts();
    },
    { timeoutMs, intervalMs: 25, what },
  );
  if (died !== undefined) throw died;
}

/**
 * Waits until the Unix socket at `path` accepts a connection (net.connect succeeds).
 * With `daemon`, fails fast if that process exits first.
 */
export function waitForSocket(path: string, timeoutMs = 10_000, daemon?: DaemonHandle | ChildProcess): Promise<void> {
  return waitForListener(`Unix socket ${path} to accept connections`, () => socketAccepts(path), timeoutMs, daemon);
}

/** Waits until `host:port` accepts TCP. With `daemon`, fails fast if that process exits first. */
export function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10_000, daemon?: DaemonHandle): Promise<void> {
  return waitForListener(`TCP ${host}:${port} to accept connections`, () => tryConnect({ port, host }, 1000), timeoutMs, daemon);
}

/** A TCP port that is free on 127.0.0.1 right now (bind to port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: no TCP address'));
        return;
      }
      const port = addr.port;
      srv.close((e) => (e ? reject(e) : resolve(port)));
    });
  });
}

/** SIGTERM by PID, SIGKILL after a grace period; resolves when the process is gone. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  await gone;
  clearTimeout(timer);
}

/** True while `pid` runs (a zombie, which nobody may reap here, counts as gone). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    /* no /proc entry (gone), or no /proc at all: ask kill(2) */
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * For a process that is not our child (an agent that daemonized itself): SIGTERM by PID,
 * SIGKILL after the grace period, then a bounded wait for it to be gone.
 */
export async function stopPid(pid: number, graceMs = 3000): Promise<void> {
  const signal = (s: NodeJS.Signals): void => {
    try {
      process.kill(pid, s);
    } catch {
      /* already gone */
    }
  };
  if (!pidAlive(pid)) return;
  signal('SIGTERM');
  const gone = (): Promise<boolean> =>
    waitFor(() => !pidAlive(pid), { timeoutMs: graceMs, what: `pid ${pid} to exit` }).then(
      () => true,
      () => false,
    );
  if (await gone()) return;
  signal('SIGKILL');
  await gone();
}
