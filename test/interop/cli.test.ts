/**
 * Black-box tests of the real `tsagent start` binary, driven as a user would drive
 * OpenSSH's ssh-agent: through /bin/sh and `eval`, with the real OpenSSH `ssh-add` as the
 * client. The contract is ../shared CLI.md and PROTOCOL.md "Process and socket".
 *
 * Every process a case starts (foreground agents, background agents named by their printed
 * SSH_AGENT_PID, helpers) is killed by PID in a finally block, and again in after() as a
 * last resort; every run is bounded in time; each case gets fresh temp dirs and an explicit
 * environment (HOME and TMPDIR in a temp dir, XDG_RUNTIME_DIR unset unless the case sets it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { findPeerOrFail } from '../helpers/peers';
import { pidAlive, stopChild, stopPid, waitForSocket } from '../helpers/proc';

const ROOT = resolve(__dirname, '../../..');
const BIN = join(ROOT, 'bin/tsagent.js');
const NODE = process.execPath;
const SH = '/bin/sh';
const SSH_ADD = findPeerOrFail('ssh-add');
const SSH_KEYGEN = findPeerOrFail('ssh-keygen');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Upper bound for one short-lived command (tsagent start, ssh-add, ssh-keygen). */
const RUN_TIMEOUT_MS = 20_000;
const CASE_TIMEOUT_MS = 90_000;

// ---------------------------------------------------------------------------------------
// Process bookkeeping: everything we start is remembered and killed by PID.

const liveChildren = new Set<ChildProcess>();
const agentPids = new Set<number>();
const tempDirs = new Set<string>();

async function waitFor(cond: () => boolean, timeoutMs: number, step = 25): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(step);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Kills a background agent by PID: SIGTERM, then SIGKILL when it lingers. */
async function killAgentPid(pid: number): Promise<void> {
  agentPids.delete(pid);
  await stopPid(pid);
}

async function tempDir(prefix = 'tsagent-cli-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

async function removeTemp(d: string): Promise<void> {
  tempDirs.delete(d);
  await rm(d, { recursive: true, force: true });
}

after(async () => {
  for (const c of [...liveChildren]) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const pid of [...agentPids]) await killAgentPid(pid);
  for (const d of [...tempDirs]) await removeTemp(d);
});

// ---------------------------------------------------------------------------------------
// Running commands.

interface RunResult {
  readonly pid: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface RunOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs?: number;
}

function describeRun(what: string, r: Pick<RunResult, 'code' | 'signal' | 'stdout' | 'stderr'>): string {
  return `${what}: exit ${r.code} signal ${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Runs a command to completion (bounded: SIGKILL by PID and reject on timeout). */
function run(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const limit = opts.timeoutMs ?? RUN_TIMEOUT_MS;
    const timer = setTimeout(() => {
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      reject(
        new Error(
          describeRun(`timed out after ${limit} ms: ${file} ${args.join(' ')}`, { code: null, signal: null, stdout, stderr }),
        ),
      );
    }, limit);
    child.once('error', (err) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      resolvePromise({ pid: child.pid!, code, signal, stdout, stderr });
    });
  });
}

function tsagent(args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return run(NODE, [BIN, ...args], opts);
}

function sshAdd(args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return run(SSH_ADD, args, { env });
}

/** The environment a case hands to its processes: nothing inherited but PATH. */
function envFor(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: home, TMPDIR: home, LANG: 'C', ...extra };
}

function clientEnv(home: string, sock: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, SSH_AUTH_SOCK: sock, ...extra };
}

// ---------------------------------------------------------------------------------------
// Printed shell lines.

const SH_START =
  /^SSH_AUTH_SOCK=(.+); export SSH_AUTH_SOCK;\nSSH_AGENT_PID=(\d+); export SSH_AGENT_PID;\necho Agent pid (\d+);\n$/;
const CSH_START = /^setenv SSH_AUTH_SOCK (.+);\nsetenv SSH_AGENT_PID (\d+);\necho Agent pid (\d+);\n$/;

/** Remembers any agent PID a background start printed, before anything is asserted. */
function trackPrintedPid(stdout: string): number | undefined {
  const m = /SSH_AGENT_PID[= ](\d+)/.exec(stdout);
  if (m === null) return undefined;
  const pid = Number(m[1]);
  agentPids.add(pid);
  return pid;
}

interface BackgroundAgent {
  readonly sock: string;
  readonly pid: number;
  readonly result: RunResult;
}

/** `tsagent start [args]` in the background; asserts sh-style (or csh) output and returns the agent. */
async function startBackground(args: readonly string[], opts: RunOptions, style: 'sh' | 'csh' = 'sh'): Promise<BackgroundAgent> {
  const r = await tsagent(['start', ...args], opts);
  trackPrintedPid(r.stdout);
  assert.equal(r.code, 0, describeRun(`tsagent start ${args.join(' ')} should succeed`, r));
  const m = (style === 'sh' ? SH_START : CSH_START).exec(r.stdout);
  assert.ok(m, `tsagent start ${args.join(' ')} should print exactly the three ${style} lines, got:\n${r.stdout}`);
  assert.equal(m[2], m[3], 'SSH_AGENT_PID and "echo Agent pid" should name the same process');
  return { sock: m[1], pid: Number(m[2]), result: r };
}

// ---------------------------------------------------------------------------------------
// Foreground agents (-D / -d, command mode).

class Foreground {
  stdout = '';
  stderr = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    liveChildren.add(child);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((r) =>
      child.once('close', (code, signal) => {
        liveChildren.delete(child);
        r({ code, signal });
      }),
    );
  }

  static spawn(args: readonly string[], env: NodeJS.ProcessEnv, cwd?: string): Foreground {
    return new Foreground(spawn(NODE, [BIN, 'start', ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits until the agent printed its `echo Agent pid N;` line (it prints after listening). */
  async ready(timeoutMs = 15_000): Promise<void> {
    const ok = await waitFor(() => /echo Agent pid \d+;\n/.test(this.stdout) || !this.running, timeoutMs);
    assert.ok(ok && this.running, this.describe(`foreground agent did not become ready within ${timeoutMs} ms`));
  }

  /** Resolves with the exit status; SIGKILLs and rejects after timeoutMs. */
  async waitExit(timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (this.running) process.kill(this.pid, 'SIGKILL');
        reject(new Error(this.describe(`agent pid ${this.pid} did not exit within ${timeoutMs} ms`)));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  describe(what: string): string {
    return `${what}\n--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
  }
}

/** Parses the agent's stderr as JSON lines (pino); fails on a line that is not JSON. */
function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`stderr line is not JSON: ${JSON.stringify(l)}`);
      }
    });
}

// ---------------------------------------------------------------------------------------
// Keys.

interface TestKey {
  readonly path: string;
  readonly comment: string;
  /** The base64 lines of the PEM body of the private key file. */
  readonly pemLines: readonly string[];
  /** The 32-byte Ed25519 seed and the 64-byte seed||public, as stored in the file. */
  readonly seed: Buffer;
  readonly secret64: Buffer;
}

/** Reads the secret out of an unencrypted openssh-key-v1 Ed25519 file (PROTOCOL.key). */
function parseOpensshEd25519(pem: string): { seed: Buffer; secret64: Buffer; pemLines: string[] } {
  const pemLines = pem
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('-----'));
  const buf = Buffer.from(pemLines.join(''), 'base64');
  const magic = Buffer.from('openssh-key-v1\0', 'latin1');
  assert.ok(buf.subarray(0, magic.length).equals(magic), 'test key should be in openssh-key-v1 format');
  let off = magic.length;
  const str = (): Buffer => {
    const n = buf.readUInt32BE(off);
    const s = buf.subarray(off + 4, off + 4 + n);
    off += 4 + n;
    return s;
  };
  assert.equal(str().toString(), 'none', 'test key should be unencrypted');
  str(); // kdfname
  str(); // kdfoptions
  const nkeys = buf.readUInt32BE(off);
  off += 4;
  for (let i = 0; i < nkeys; i++) str(); // public keys
  const priv = str();
  let p = 8; // check1, check2
  const pstr = (): Buffer => {
    const n = priv.readUInt32BE(p);
    const s = priv.subarray(p + 4, p + 4 + n);
    p += 4 + n;
    return s;
  };
  assert.equal(pstr().toString(), 'ssh-ed25519');
  pstr(); // public key
  const secret64 = Buffer.from(pstr());
  assert.equal(secret64.length, 64, 'ed25519 private part should be 64 bytes');
  return { seed: secret64.subarray(0, 32), secret64, pemLines };
}

async function makeKey(dir: string, name: string): Promise<TestKey> {
  const path = join(dir, name);
  const comment = `tsagent-cli-${name}`;
  const r = await run(SSH_KEYGEN, ['-q', '-N', '', '-t', 'ed25519', '-C', comment, '-f', path], { env: envFor(dir) });
  assert.equal(r.code, 0, describeRun('ssh-keygen', r));
  const parsed = parseOpensshEd25519(await readFile(path, 'utf8'));
  return { path, comment, ...parsed };
}

let keyDir: string;
let key: TestKey;

before(async () => {
  keyDir = await tempDir('tsagent-cli-keys-');
  key = await makeKey(keyDir, 'id_ed25519');
});

// ---------------------------------------------------------------------------------------
// Checks.

function assertPrivateSocket(sock: string): void {
  const st = lstatSync(sock);
  assert.ok(st.isSocket(), `${sock} should be a socket`);
  assert.equal((st.mode & 0o777).toString(8), '600', `socket ${sock} should be mode 0600 (srw-------)`);
  if (typeof process.getuid === 'function') assert.equal(st.uid, process.getuid(), 'socket should be owned by the user');
}

function assertPrivateDir(dir: string): void {
  const st = lstatSync(dir);
  assert.ok(st.isDirectory(), `${dir} should be a directory`);
  assert.equal((st.mode & 0o777).toString(8), '700', `directory ${dir} should be mode 0700`);
}

async function assertGone(path: string, what: string, timeoutMs = 3000): Promise<void> {
  const gone = await waitFor(() => !existsSync(path), timeoutMs);
  assert.ok(gone, `${what} ${path} should have been removed`);
}

async function assertProcessGone(pid: number, timeoutMs = 5000): Promise<void> {
  const gone = await waitFor(() => !pidAlive(pid), timeoutMs);
  assert.ok(gone, `agent pid ${pid} should have exited within ${timeoutMs} ms`);
}

function leftoverTsagentDirs(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('tsagent-'));
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** ssh-add -l, retried until it exits `want` (bounded); returns the last run. */
async function pollList(env: NodeJS.ProcessEnv, want: number, timeoutMs: number): Promise<RunResult> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await sshAdd(['-l'], env);
    if (r.code === want || Date.now() >= end) return r;
    await sleep(100);
  }
}

// =======================================================================================

describe('tsagent start (CLI) with OpenSSH ssh-add', { timeout: 15 * 60_000 }, () => {
  test(
    '1. eval "$(tsagent start -s)" in sh, ssh-add -l, socket 0600 in a 0700 dir, then -k',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const home = await tempDir();
      let pid: number | undefined;
      try {
        const script = [
          'out="$("$TS_NODE" "$TS_BIN" start -s)" || { echo "tsagent start failed: $?"; exit 90; }',
          'printf "%s\\n" "$out"',
          'echo "@@EVAL"',
          'eval "$out"',
          'echo "@@SSHADD"',
          '"$TS_SSH_ADD" -l',
          'echo "ssh-add-rc=$?"',
          'echo "sock=$SSH_AUTH_SOCK"',
          'echo "pid=$SSH_AGENT_PID"',
        ].join('\n');
        const r = await run(SH, ['-c', script], { env: envFor(home, { TS_NODE: NODE, TS_BIN: BIN, TS_SSH_ADD: SSH_ADD }) });
        pid = trackPrintedPid(r.stdout);
        assert.equal(r.code, 0, describeRun('sh -c eval "$(tsagent start -s)"', r));
        const [printed, evalOut, afterAdd] = r.stdout.split(/@@EVAL\n|@@SSHADD\n/);
        const m = SH_START.exec(printed ?? '');
        assert.ok(m, `tsagent start -s should print exactly three sh lines, got:\n${printed}`);
        const sock = m[1];
        pid = Number(m[2]);
        assert.equal(m[3], m[2], 'echo Agent pid should name SSH_AGENT_PID');
        assert.equal(evalOut, `Agent pid ${pid}\n`, 'eval should echo "Agent pid N"');
        assert.match(
          afterAdd ?? '',
          /^The agent has no identities\.\nssh-add-rc=1\n/,
          'ssh-add -l in the eval-ed shell should exit 1 with "The agent has no identities."',
        );
        assert.match(
          afterAdd ?? '',
          new RegExp(`\\nsock=${escapeRe(sock)}\\npid=${pid}\\n$`),
          'eval should export SSH_AUTH_SOCK and SSH_AGENT_PID',
        );
        assert.ok(pidAlive(pid), `background agent ${pid} should be running`);

        // $TMPDIR/tsagent-XXXXXX/agent.<pid>, socket 0600, directory 0700.
        assert.match(
          sock,
          new RegExp(`^${escapeRe(home)}/tsagent-[A-Za-z0-9]{6}/agent\\.\\d+$`),
          'default socket should be $TMPDIR/tsagent-XXXXXX/agent.<pid>',
        );
        const dir = sock.slice(0, sock.lastIndexOf('/'));
        assertPrivateSocket(sock);
        assertPrivateDir(dir);

        // The background agent runs with one malloc arena (src/cli/harden.ts). Its /proc entries
        // belong to root (not dumpable): readable here only when the suite runs as root.
        if (process.getuid?.() === 0) {
          const environ = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
          assert.ok(environ.includes('MALLOC_ARENA_MAX=1'), 'the background agent should run with MALLOC_ARENA_MAX=1');
        }

        // tsagent start -k with SSH_AGENT_PID set.
        const k = await tsagent(['start', '-k'], {
          env: envFor(home, { SSH_AGENT_PID: String(pid), SSH_AUTH_SOCK: sock, SHELL: '/bin/sh' }),
        });
        assert.equal(k.code, 0, describeRun('tsagent start -k', k));
        assert.equal(
          k.stdout,
          `unset SSH_AUTH_SOCK;\nunset SSH_AGENT_PID;\necho Agent pid ${pid} killed;\n`,
          'tsagent start -k output',
        );
        await assertProcessGone(pid);
        await assertGone(sock, 'socket');
        await assertGone(dir, 'socket directory');
        assert.deepEqual(leftoverTsagentDirs(home), [], 'nothing should be left in $TMPDIR');
      } finally {
        if (pid !== undefined) await killAgentPid(pid);
        await removeTemp(home);
      }
    },
  );

  test('2. -c prints csh, $SHELL picks the style, -c -s is a usage error', { timeout: CASE_TIMEOUT_MS }, async () => {
    const home = await tempDir();
    const started: number[] = [];
    try {
      const csh = await startBackground(['-c'], { env: envFor(home) }, 'csh');
      started.push(csh.pid);
      assert.match(csh.sock, new RegExp(`^${escapeRe(home)}/tsagent-`), '-c socket path');
      assert.match(csh.result.stdout, /^setenv SSH_AUTH_SOCK /, '-c should print setenv');
      // -k -c prints the csh unset lines.
      const k = await tsagent(['start', '-c', '-k'], { env: envFor(home, { SSH_AGENT_PID: String(csh.pid) }) });
      assert.equal(k.code, 0, describeRun('tsagent start -c -k', k));
      assert.equal(
        k.stdout,
        `unsetenv SSH_AUTH_SOCK;\nunsetenv SSH_AGENT_PID;\necho Agent pid ${csh.pid} killed;\n`,
        '-c -k output',
      );
      await assertProcessGone(csh.pid);

      const tcsh = await startBackground([], { env: envFor(home, { SHELL: '/bin/tcsh' }) }, 'csh');
      started.push(tcsh.pid);
      const bash = await startBackground([], { env: envFor(home, { SHELL: '/bin/bash' }) }, 'sh');
      started.push(bash.pid);
      // -s wins over a csh $SHELL.
      const forcedSh = await startBackground(['-s'], { env: envFor(home, { SHELL: '/bin/csh' }) }, 'sh');
      started.push(forcedSh.pid);

      const before = leftoverTsagentDirs(home).length;
      const both = await tsagent(['start', '-c', '-s'], { env: envFor(home) });
      trackPrintedPid(both.stdout);
      assert.equal(both.code, 1, describeRun('tsagent start -c -s should exit 1', both));
      assert.equal(both.stdout, '', '-c -s should print nothing on stdout');
      assert.match(both.stderr, /usage/i, '-c -s should print the usage on stderr');
      assert.equal(leftoverTsagentDirs(home).length, before, '-c -s should not create a socket directory');
    } finally {
      for (const pid of started) await killAgentPid(pid);
      await removeTemp(home);
    }
  });

  test(
    '3. -D -a PATH: foreground, JSON log, ssh-add works, SIGTERM/SIGINT/SIGHUP exit 0 and remove the socket',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
        const home = await tempDir();
        const sock = join(home, 'agent.sock');
        const agent = Foreground.spawn(['-D', '-a', sock], envFor(home));
        try {
          await agent.ready();
          assert.equal(
            agent.stdout,
            `SSH_AUTH_SOCK=${sock}; export SSH_AUTH_SOCK;\necho Agent pid ${agent.pid};\n`,
            `-D should print the SSH_AUTH_SOCK line and "echo Agent pid <its pid>;" only`,
          );
          assertPrivateSocket(sock);
          const env = clientEnv(home, sock);
          const add = await sshAdd([key.path], env);
          assert.equal(add.code, 0, describeRun('ssh-add key against -D agent', add));
          const list = await sshAdd(['-l'], env);
          assert.equal(list.code, 0, describeRun('ssh-add -l with a key', list));
          assert.ok(
            list.stdout.includes(key.comment) && /SHA256:/.test(list.stdout),
            `ssh-add -l should list the key: ${list.stdout}`,
          );

          // stderr is JSON lines (pino), including the "listening" line, written once the first
          // requests have been served (src/log.ts): waited for, bounded.
          await waitFor(() => logLines(agent.stderr).length > 0, 10_000);
          const lines = logLines(agent.stderr);
          assert.ok(lines.length > 0, '-D should log to stderr');
          for (const l of lines)
            assert.equal(typeof l.level, 'number', `log line should have a numeric level: ${JSON.stringify(l)}`);
          assert.ok(!lines.some((l) => l.level === 20), '-D (without -d) should not log debug lines');

          process.kill(agent.pid, sig);
          const st = await agent.waitExit();
          assert.deepEqual(st, { code: 0, signal: null }, agent.describe(`${sig} should make the -D agent exit 0`));
          assert.ok(!existsSync(sock), `${sig}: the socket ${sock} should be removed`);
          // The audit log is written with no config file too (POLICY.md §2): ~/.local/state/tsagent.
          assert.deepEqual(
            readdirSync(home).filter((f) => f !== '.local'),
            [],
            `${sig}: nothing should be left beside the socket`,
          );
        } finally {
          await agent.stop();
          await removeTemp(home);
        }
      }
    },
  );

  test('4. -d: debug JSON lines, never the private key or the lock passphrase', { timeout: CASE_TIMEOUT_MS }, async () => {
    const home = await tempDir();
    const sock = join(home, 'agent.sock');
    const passphrase = `lock-${randomBytes(9).toString('hex')}-Sw0rdf1sh`;
    const askpass = join(home, 'askpass.sh');
    await writeFile(askpass, `#!/bin/sh\nprintf '%s\\n' '${passphrase}'\n`);
    chmodSync(askpass, 0o700);
    const agent = Foreground.spawn(['-d', '-a', sock], envFor(home));
    try {
      await agent.ready();
      assert.equal(agent.stdout, `SSH_AUTH_SOCK=${sock}; export SSH_AUTH_SOCK;\necho Agent pid ${agent.pid};\n`, '-d output');
      const env = clientEnv(home, sock);
      const askEnv = clientEnv(home, sock, { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' });

      const add = await sshAdd([key.path], env);
      assert.equal(add.code, 0, describeRun('ssh-add key', add));
      const logged = await waitFor(() => /identity added/.test(agent.stderr), 5000);
      assert.ok(logged, agent.describe('-d should log the added identity'));
      const added = logLines(agent.stderr).filter((l) => l.level === 20);
      assert.ok(added.length > 0, agent.describe('-d should log at debug level (pino level 20)'));
      assert.ok(
        added.some((l) => typeof l.fingerprint === 'string' && l.fingerprint.startsWith('SHA256:')),
        agent.describe('the debug "identity added" line should carry a SHA256 fingerprint'),
      );

      const removeAll = await sshAdd(['-D'], env);
      assert.equal(removeAll.code, 0, describeRun('ssh-add -D', removeAll));
      assert.equal((await sshAdd(['-l'], env)).code, 1, 'after ssh-add -D the agent should be empty');

      assert.equal((await sshAdd([key.path], env)).code, 0, 're-add after -D');
      const lock = await sshAdd(['-x'], askEnv);
      assert.equal(lock.code, 0, describeRun('ssh-add -x (lock) via SSH_ASKPASS', lock));
      const locked = await sshAdd(['-l'], env);
      assert.equal(locked.code, 1, describeRun('ssh-add -l on a locked agent should list nothing', locked));
      const unlock = await sshAdd(['-X'], askEnv);
      assert.equal(unlock.code, 0, describeRun('ssh-add -X (unlock) via SSH_ASKPASS', unlock));
      const unlocked = await sshAdd(['-l'], env);
      assert.equal(unlocked.code, 0, describeRun('ssh-add -l after unlock should list the key again', unlocked));

      process.kill(agent.pid, 'SIGTERM');
      assert.deepEqual(await agent.waitExit(), { code: 0, signal: null }, agent.describe('SIGTERM should stop the -d agent'));

      const stderrLines = agent.stderr.split('\n');
      const secrets: Array<[string, string]> = [
        ...key.pemLines.map((l, i): [string, string] => [`base64 line ${i + 1} of the private key file`, l]),
        ['the word PRIVATE', 'PRIVATE'],
        ['the Ed25519 seed (hex)', key.seed.toString('hex')],
        ['the Ed25519 seed (base64)', key.seed.toString('base64').replace(/=+$/, '')],
        ['the Ed25519 secret (hex)', key.secret64.toString('hex')],
        ['the Ed25519 secret (base64)', key.secret64.toString('base64').replace(/=+$/, '')],
        ['the lock passphrase', passphrase],
        ['the lock passphrase (hex)', Buffer.from(passphrase).toString('hex')],
        ['the lock passphrase (base64)', Buffer.from(passphrase).toString('base64').replace(/=+$/, '')],
      ];
      for (const [what, needle] of secrets) {
        const hit = stderrLines.findIndex((l) => l.includes(needle));
        assert.equal(hit, -1, `stderr line ${hit + 1} contains ${what}: ${stderrLines[hit]}`);
      }
    } finally {
      await agent.stop();
      await removeTemp(home);
    }
  });

  test(
    '5. -a PATH: regular file and live socket refused and left alone, stale socket replaced',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const home = await tempDir();
      const extra: Foreground[] = [];
      let staleHolder: ChildProcess | undefined;
      try {
        // A regular file: exit 1, untouched (background and foreground).
        const file = join(home, 'not-a-socket');
        await writeFile(file, 'precious contents\n', { mode: 0o644 });
        const before = statSync(file);
        for (const args of [
          ['-s', '-a', file],
          ['-D', '-a', file],
        ]) {
          const r = await tsagent(['start', ...args], { env: envFor(home) });
          trackPrintedPid(r.stdout);
          assert.equal(r.code, 1, describeRun(`tsagent start ${args.join(' ')} on a regular file should exit 1`, r));
          assert.ok(r.stderr.trim() !== '', 'the refusal should be explained on stderr');
          assert.equal(await readFile(file, 'utf8'), 'precious contents\n', 'the regular file should be left alone');
          const now = statSync(file);
          assert.ok(
            now.isFile() && now.ino === before.ino && (now.mode & 0o777) === 0o644,
            'the regular file should be untouched (same inode and mode)',
          );
        }

        // A live agent's socket: exit 1, the first agent keeps serving its key.
        const live = join(home, 'live.sock');
        const first = Foreground.spawn(['-D', '-a', live], envFor(home));
        extra.push(first);
        await first.ready();
        const liveEnv = clientEnv(home, live);
        assert.equal((await sshAdd([key.path], liveEnv)).code, 0, 'ssh-add to the first agent');
        for (const args of [
          ['-s', '-a', live],
          ['-D', '-a', live],
        ]) {
          const r = await tsagent(['start', ...args], { env: envFor(home) });
          trackPrintedPid(r.stdout);
          assert.equal(r.code, 1, describeRun(`tsagent start ${args.join(' ')} on a live socket should exit 1`, r));
          assert.ok(first.running, first.describe('the first agent should still run'));
          const l = await sshAdd(['-l'], liveEnv);
          assert.equal(l.code, 0, describeRun('the first agent should still serve its key', l));
          assert.ok(l.stdout.includes(key.comment), 'the first agent should still hold its key');
        }

        // A stale socket (its listener SIGKILLed without unlinking): replaced.
        const stale = join(home, 'stale.sock');
        staleHolder = spawn(
          NODE,
          ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('ready'))`],
          {
            env: envFor(home),
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        liveChildren.add(staleHolder);
        await waitForSocket(stale, 10_000, staleHolder);
        const holderGone = new Promise<void>((r) => staleHolder!.once('exit', () => r()));
        process.kill(staleHolder.pid!, 'SIGKILL');
        await holderGone;
        liveChildren.delete(staleHolder);
        assert.ok(lstatSync(stale).isSocket(), 'the stale socket file should remain after SIGKILL');
        const refused = await new Promise<boolean>((r) => {
          const s = connect(stale);
          s.once('connect', () => {
            s.destroy();
            r(false);
          });
          s.once('error', () => r(true));
        });
        assert.ok(refused, 'nothing should answer on the stale socket');
        const replacing = Foreground.spawn(['-D', '-a', stale], envFor(home));
        extra.push(replacing);
        await replacing.ready();
        assertPrivateSocket(stale);
        const l = await sshAdd(['-l'], clientEnv(home, stale));
        assert.equal(l.code, 1, describeRun('the agent that replaced the stale socket should answer (empty)', l));
      } finally {
        if (staleHolder?.pid !== undefined && staleHolder.exitCode === null && staleHolder.signalCode === null)
          process.kill(staleHolder.pid, 'SIGKILL');
        for (const a of extra) await a.stop();
        await removeTemp(home);
      }
    },
  );

  test(
    '6. XDG_RUNTIME_DIR: socket at $XDG_RUNTIME_DIR/tsagent/agent.sock in a 0700 dir',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const home = await tempDir();
      const runtime = join(home, 'run');
      await mkdir(runtime, { mode: 0o700 });
      let pid: number | undefined;
      try {
        const env = envFor(home, { XDG_RUNTIME_DIR: runtime });
        const a = await startBackground(['-s'], { env });
        pid = a.pid;
        assert.equal(a.sock, join(runtime, 'tsagent', 'agent.sock'), 'socket path under XDG_RUNTIME_DIR');
        assertPrivateDir(join(runtime, 'tsagent'));
        assertPrivateSocket(a.sock);
        assert.deepEqual(leftoverTsagentDirs(home), [], 'no $TMPDIR/tsagent-* directory when XDG_RUNTIME_DIR is set');
        const l = await sshAdd(['-l'], clientEnv(home, a.sock));
        assert.equal(l.code, 1, describeRun('ssh-add -l against the XDG agent', l));
        const k = await tsagent(['start', '-k'], { env: { ...env, SSH_AGENT_PID: String(pid) } });
        assert.equal(k.code, 0, describeRun('tsagent start -k', k));
        await assertProcessGone(pid);
        await assertGone(a.sock, 'socket');
        await assertGone(join(runtime, 'tsagent'), 'socket directory');
        assert.ok(existsSync(runtime), 'XDG_RUNTIME_DIR itself should stay');
      } finally {
        if (pid !== undefined) await killAgentPid(pid);
        await removeTemp(home);
      }
    },
  );

  test(
    '6b. a refused $XDG_RUNTIME_DIR/tsagent (0777, or not ours) is left where it was',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const home = await tempDir();
      const runtime = join(home, 'run');
      await mkdir(runtime, { mode: 0o700 });
      const dir = join(runtime, 'tsagent');
      try {
        const env = envFor(home, { XDG_RUNTIME_DIR: runtime });
        await mkdir(dir);
        chmodSync(dir, 0o777);
        for (const args of [['-s'], ['-D']]) {
          const r = await tsagent(['start', ...args], { env, timeoutMs: 20_000 });
          assert.notEqual(r.code, 0, describeRun(`start ${args[0]} with a 0777 socket dir`, r));
          assert.match(r.stderr, /accessible by other users/);
          assert.ok(existsSync(dir), `start ${args[0]} must not remove a directory it did not create`);
          assert.equal(statSync(dir).mode & 0o777, 0o777, 'nor change it');
        }
        // Not ours: only root can hand a directory to another user, so only then is this case run.
        if (process.getuid?.() === 0) {
          chmodSync(dir, 0o700);
          chownSync(dir, 65534, 65534);
          const r = await tsagent(['start', '-s'], { env, timeoutMs: 20_000 });
          assert.notEqual(r.code, 0, describeRun('start with a foreign-owned socket dir', r));
          assert.match(r.stderr, /not owned by the current user/);
          assert.ok(existsSync(dir), 'a foreign-owned directory stays');
        }
      } finally {
        await removeTemp(home);
      }
    },
  );

  test(
    '7. -t: 1h30m accepted, -t 4 expires keys after ~4 s, -t bogus is a usage error',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const home = await tempDir();
      let pid: number | undefined;
      // 4 s: long enough to list the key right after adding it on a loaded machine.
      const agent = Foreground.spawn(['-D', '-t', '4', '-a', join(home, 'agent.sock')], envFor(home));
      try {
        const long = await startBackground(['-s', '-t', '1h30m'], { env: envFor(home) });
        pid = long.pid;
        await killAgentPid(pid);

        await agent.ready();
        const env = clientEnv(home, join(home, 'agent.sock'));
        const add = await sshAdd([key.path], env);
        const addedAt = Date.now();
        assert.equal(add.code, 0, describeRun('ssh-add key (no -t) to a -t 4 agent', add));
        const first = await sshAdd(['-l'], env);
        assert.equal(first.code, 0, describeRun('the key should be listed right after adding', first));
        const last = await pollList(env, 1, 20_000);
        const elapsed = Date.now() - addedAt;
        assert.equal(
          last.code,
          1,
          describeRun(`the key should have expired within 20 s (default lifetime 4 s), elapsed ${elapsed} ms`, last),
        );
        assert.ok(elapsed >= 3000, `the key expired after ${elapsed} ms, too early for a 4 s lifetime`);
        assert.ok(agent.running, 'the agent keeps running after expiry');

        const bogus = await tsagent(['start', '-t', 'bogus'], { env: envFor(home) });
        trackPrintedPid(bogus.stdout);
        assert.equal(bogus.code, 1, describeRun('-t bogus should exit 1', bogus));
        assert.equal(bogus.stdout, '', '-t bogus should print nothing on stdout');
        assert.match(bogus.stderr, /bogus|lifetime/i, '-t bogus should say what is wrong');
        assert.match(bogus.stderr, /usage/i, '-t bogus should print the usage');
      } finally {
        if (pid !== undefined) await killAgentPid(pid);
        await agent.stop();
        await removeTemp(home);
      }
    },
  );

  test('8. -E md5 accepted (MD5 fingerprints in the debug log), -E sha1 refused', { timeout: CASE_TIMEOUT_MS }, async () => {
    const home = await tempDir();
    const sock = join(home, 'agent.sock');
    const agent = Foreground.spawn(['-d', '-E', 'md5', '-a', sock], envFor(home));
    try {
      await agent.ready();
      assert.equal((await sshAdd([key.path], clientEnv(home, sock))).code, 0, 'ssh-add to an -E md5 agent');
      const logged = await waitFor(() => /identity added/.test(agent.stderr), 5000);
      assert.ok(logged, agent.describe('-d should log the added identity'));
      const line = logLines(agent.stderr).find((l) => l.msg === 'identity added');
      assert.match(
        String(line?.fingerprint),
        /^MD5:([0-9a-f]{2}:){15}[0-9a-f]{2}$/,
        'with -E md5 the log fingerprint should be MD5:xx:..',
      );

      const sha1 = await tsagent(['start', '-E', 'sha1'], { env: envFor(home) });
      trackPrintedPid(sha1.stdout);
      assert.equal(sha1.code, 1, describeRun('-E sha1 should exit 1', sha1));
      assert.equal(sha1.stdout, '', '-E sha1 should print nothing on stdout');
      assert.match(sha1.stderr, /sha1/, '-E sha1 should name the bad hash');
    } finally {
      await agent.stop();
      await removeTemp(home);
    }
  });

  test('9. -k without SSH_AGENT_PID: an error, exit 1', { timeout: CASE_TIMEOUT_MS }, async () => {
    const home = await tempDir();
    try {
      const r = await tsagent(['start', '-k'], { env: envFor(home) });
      assert.equal(r.code, 1, describeRun('-k without SSH_AGENT_PID should exit 1', r));
      assert.equal(r.stdout, '', '-k without SSH_AGENT_PID should print nothing on stdout');
      assert.match(r.stderr, /SSH_AGENT_PID/, 'the error should name SSH_AGENT_PID');
    } finally {
      await removeTemp(home);
    }
  });

  test(
    '10. command mode: the child sees the agent, its exit code is ours, the socket goes with it',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const home = await tempDir();
      try {
        const script = '"$TS_SSH_ADD" -l; echo "rc=$?"; echo "sock=$SSH_AUTH_SOCK"; echo "pid=$SSH_AGENT_PID"; exit 3';
        const r = await tsagent(['start', '--', SH, '-c', script], { env: envFor(home, { TS_SSH_ADD: SSH_ADD }) });
        assert.equal(r.code, 3, describeRun('tsagent start -- sh -c "...; exit 3" should exit 3', r));
        const m = /^The agent has no identities\.\nrc=1\nsock=(.+)\npid=(\d+)\n$/.exec(r.stdout);
        assert.ok(m, `the command should have reached the agent with SSH_AUTH_SOCK and SSH_AGENT_PID set, got:\n${r.stdout}`);
        const sock = m[1];
        assert.equal(Number(m[2]), r.pid, 'SSH_AGENT_PID should be the tsagent process');
        assert.match(
          sock,
          new RegExp(`^${escapeRe(home)}/tsagent-[A-Za-z0-9]{6}/agent\\.\\d+$`),
          'command-mode socket under $TMPDIR',
        );
        assert.ok(!existsSync(sock), `the socket ${sock} should be gone after the command exits`);
        assert.deepEqual(leftoverTsagentDirs(home), [], 'the socket directory should be gone after the command exits');
        assert.ok(!pidAlive(r.pid), 'the agent should have exited with the command');

        // Without `--`: the command's own -c is not tsagent's csh flag.
        const r2 = await tsagent(['start', 'sh', '-c', 'echo "child pid=$SSH_AGENT_PID"; exit 0'], { env: envFor(home) });
        assert.equal(r2.code, 0, describeRun('tsagent start sh -c "exit 0" should exit 0', r2));
        assert.equal(r2.stdout, `child pid=${r2.pid}\n`, 'the command should have run with SSH_AGENT_PID set');
        assert.deepEqual(leftoverTsagentDirs(home), [], 'nothing left after the second command');
      } finally {
        await removeTemp(home);
      }
    },
  );

  test('11. --version and start --help', { timeout: CASE_TIMEOUT_MS }, async () => {
    const home = await tempDir();
    try {
      const v = await tsagent(['--version'], { env: envFor(home) });
      assert.equal(v.code, 0, describeRun('--version', v));
      assert.equal(v.stdout.trim(), VERSION, '--version should print the package.json version');
      const h = await tsagent(['start', '--help'], { env: envFor(home) });
      assert.equal(h.code, 0, describeRun('start --help should exit 0', h));
      assert.match(h.stdout, /(^|\s)-a\b/, 'start --help should mention -a');
      assert.match(h.stdout, /(^|\s)-t\b/, 'start --help should mention -t');
      assert.deepEqual(leftoverTsagentDirs(home), [], '--help should not start an agent');
    } finally {
      await removeTemp(home);
    }
  });

  test('12. SIGUSR1 drops every key and the agent keeps serving', { timeout: CASE_TIMEOUT_MS }, async () => {
    const home = await tempDir();
    const sock = join(home, 'agent.sock');
    const agent = Foreground.spawn(['-D', '-a', sock], envFor(home));
    try {
      await agent.ready();
      const env = clientEnv(home, sock);
      assert.equal((await sshAdd([key.path], env)).code, 0, 'ssh-add key');
      assert.equal((await sshAdd(['-l'], env)).code, 0, 'key listed before SIGUSR1');
      process.kill(agent.pid, 'SIGUSR1');
      const l = await pollList(env, 1, 5000);
      assert.equal(l.code, 1, describeRun('after SIGUSR1 ssh-add -l should list nothing', l));
      assert.match(l.stdout, /The agent has no identities\./);
      assert.ok(agent.running, agent.describe('the agent should survive SIGUSR1'));
      assert.equal((await sshAdd([key.path], env)).code, 0, 'the agent still accepts keys after SIGUSR1');
      assert.equal((await sshAdd(['-l'], env)).code, 0, 'and lists them');
    } finally {
      await agent.stop();
      await removeTemp(home);
    }
  });

  test('13. ssh-add exit codes: -l/-L 0 with keys, 1 empty, 2 without an agent', { timeout: CASE_TIMEOUT_MS }, async () => {
    const home = await tempDir();
    const sock = join(home, 'agent.sock');
    const agent = Foreground.spawn(['-D', '-a', sock], envFor(home));
    try {
      await agent.ready();
      const env = clientEnv(home, sock);
      const empty = await sshAdd(['-l'], env);
      assert.equal(empty.code, 1, describeRun('ssh-add -l on an empty agent', empty));
      assert.match(empty.stdout, /The agent has no identities\./);
      assert.equal((await sshAdd(['-L'], env)).code, 1, 'ssh-add -L on an empty agent');
      assert.equal((await sshAdd([key.path], env)).code, 0, 'ssh-add key');
      const full = await sshAdd(['-l'], env);
      assert.equal(full.code, 0, describeRun('ssh-add -l with a key', full));
      const pub = await sshAdd(['-L'], env);
      assert.equal(pub.code, 0, describeRun('ssh-add -L with a key', pub));
      const expected = (await readFile(`${key.path}.pub`, 'utf8')).trim();
      assert.equal(pub.stdout.trim(), expected, 'ssh-add -L should print the public key file');

      const nowhere = await sshAdd(['-l'], clientEnv(home, join(home, 'nowhere.sock')));
      assert.equal(nowhere.code, 2, describeRun('ssh-add -l with SSH_AUTH_SOCK pointing nowhere', nowhere));
      const noSock = { ...env };
      delete noSock.SSH_AUTH_SOCK;
      assert.equal((await sshAdd(['-l'], noSock)).code, 2, 'ssh-add -l without SSH_AUTH_SOCK');
    } finally {
      await agent.stop();
      await removeTemp(home);
    }
  });

  test(
    '14. -a with a relative path in the background binds in the current directory, like ssh-agent',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const home = await tempDir();
      const name = `tsagent-cli-rel-${randomBytes(6).toString('hex')}.sock`;
      let pid: number | undefined;
      try {
        const a = await startBackground(['-s', '-a', name], { env: envFor(home), cwd: home });
        pid = a.pid;
        assert.equal(a.sock, name, 'the printed SSH_AUTH_SOCK is the path as given (as ssh-agent prints it)');
        assert.ok(
          existsSync(join(home, name)),
          `the socket should be created in the current directory (${home}), not in / (exists in /: ${existsSync('/' + name)})`,
        );
        assertPrivateSocket(join(home, name));
        const l = await run(SSH_ADD, ['-l'], { env: clientEnv(home, name), cwd: home });
        assert.equal(l.code, 1, describeRun('ssh-add -l with the relative SSH_AUTH_SOCK from the same directory', l));
      } finally {
        if (pid !== undefined) await killAgentPid(pid);
        // Should the bug put the socket in /, take it away again.
        try {
          if (lstatSync('/' + name).isSocket()) unlinkSync('/' + name);
        } catch {
          /* not there */
        }
        await removeTemp(home);
      }
    },
  );
});
