/**
 * The systemd user units, proven with systemd's own tools (no running systemd needed):
 * - `tsagent service install|uninstall` round trip: the files, the printed systemctl lines,
 *   idempotence, foreign files and an enabled socket refused;
 * - `systemd-analyze verify --user` accepts the installed units (and does flag a broken one,
 *   so the check is not vacuous), including a Node path that needs quoting;
 * - systemd's environment.d generator turns the installed snippet into SSH_AUTH_SOCK;
 * - socket activation for real: `systemd-socket-activate` holds the socket and runs the
 *   installed unit's ExecStart= on the first connection; the real ssh-add adds, lists and
 *   signs through it; SIGTERM exits 0; the socket file is left as the activator made it;
 * - the same ExecStart= started alone creates %t/tsagent/agent.sock itself.
 *
 * Every process is killed by PID (helpers/proc), every wait is bounded, every case gets fresh
 * temp dirs and an explicit environment.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { generateKey } from '../helpers/keys';
import { requirePeer, requirePeers } from '../helpers/peers';
import { cleanEnv, removeDir, run, startDaemon, tempDir, waitFor, waitForSocket } from '../helpers/proc';
import type { DaemonHandle, RunResult } from '../helpers/proc';
import { renderTemplate } from '../../src/cli/systemd-units';

const ROOT = resolve(__dirname, '../../..');
const BIN = join(ROOT, 'bin', 'tsagent.js');
const NODE = process.execPath;
const ENV_GENERATOR = '/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator';
const CASE_TIMEOUT_MS = 120_000;

const dirs: string[] = [];
const daemons: DaemonHandle[] = [];
after(async () => {
  for (const d of daemons) await d.stop();
  for (const d of dirs) await removeDir(d);
});

async function freshDir(): Promise<string> {
  const d = await tempDir('tsagent-sd-');
  dirs.push(d);
  return d;
}

/** `tsagent service ARGS` with HOME (and XDG_CONFIG_HOME if given) pointing into the test dir. */
function tsagentService(args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return run(NODE, [BIN, 'service', ...args], { env: cleanEnv(env), timeoutMs: 20_000 });
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '');
}

/** Installs into DIR/units and DIR/env; returns the two directories. */
async function install(dir: string): Promise<{ units: string; env: string }> {
  const units = join(dir, 'units');
  const env = join(dir, 'env');
  const r = await tsagentService(['install', '--dir', units, '--env-dir', env], { HOME: join(dir, 'home') });
  assert.equal(r.code, 0, r.stderr);
  return { units, env };
}

/**
 * systemd-analyze verify --user on `files`. It needs an XDG_RUNTIME_DIR for the user manager it
 * simulates (none runs here) and must not look up man pages (--man=no).
 */
async function verify(t: Parameters<typeof requirePeer>[0], files: readonly string[]): Promise<RunResult | undefined> {
  const analyze = requirePeer(t, 'systemd-analyze');
  if (analyze === undefined) return undefined;
  const dir = await freshDir();
  const runtime = join(dir, 'runtime');
  await mkdir(runtime, { mode: 0o700 });
  return run(analyze, ['verify', '--user', '--man=no', ...files], {
    env: cleanEnv({ HOME: join(dir, 'home'), XDG_RUNTIME_DIR: runtime }),
    timeoutMs: 60_000,
  });
}

/**
 * The argv systemd runs for the unit's ExecStart=: specifiers first (%t = runtimeDir, %% = %),
 * then words split on spaces with "double quotes" (the only syntax the installer emits).
 */
function execStartArgv(unit: string, runtimeDir: string): string[] {
  const setting = unit.split('\n').filter((l) => l.startsWith('ExecStart='));
  assert.equal(setting.length, 1, 'exactly one ExecStart=');
  const expanded = setting[0].slice('ExecStart='.length).replace(/%(.)/g, (_m, c: string) => {
    if (c === '%') return '%';
    if (c === 't') return runtimeDir;
    throw new Error(`unexpected specifier %${c} in ExecStart=`);
  });
  return [...expanded.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

function exeOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
  } catch {
    return '';
  }
}

async function exitOf(d: DaemonHandle, timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const timeout = new Promise<never>((_r, reject) =>
    setTimeout(() => reject(new Error(`${d.name} did not exit within ${timeoutMs} ms`)), timeoutMs).unref(),
  );
  return Promise.race([d.exited, timeout]);
}

describe('tsagent service install / uninstall', () => {
  test(
    'round trip with --dir: files, printed lines, idempotence, exactly our files removed',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const dir = await freshDir();
      const units = join(dir, 'units');
      const envDir = join(dir, 'env');
      const env = { HOME: join(dir, 'home') };
      const socketFile = join(units, 'tsagent.socket');
      const controlFile = join(units, 'tsagent-control.socket');
      const serviceFile = join(units, 'tsagent.service');
      const envFile = join(envDir, 'tsagent.conf');
      const args = ['--dir', units, '--env-dir', envDir];

      const first = await tsagentService(['install', ...args], env);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stderr, '');
      const out = lines(first.stdout);
      for (const l of [
        `wrote ${socketFile}`,
        `wrote ${controlFile}`,
        `wrote ${serviceFile}`,
        `wrote ${envFile}`,
        '  systemctl --user daemon-reload',
        '  systemctl --user enable --now tsagent.socket',
        '  export SSH_AUTH_SOCK="$XDG_RUNTIME_DIR/tsagent/agent.sock"',
      ]) {
        assert.ok(out.includes(l), `missing line ${JSON.stringify(l)} in:\n${first.stdout}`);
      }
      assert.ok(out.indexOf('  systemctl --user daemon-reload') < out.indexOf('  systemctl --user enable --now tsagent.socket'));
      assert.ok(
        out.some((l) => l.startsWith(`note: systemctl --user does not look in ${units}`)),
        first.stdout,
      );

      const service = await readFile(serviceFile, 'utf8');
      assert.deepEqual(
        service.split('\n').filter((l) => l.startsWith('ExecStart=')),
        [`ExecStart=${NODE} ${BIN} start -D -a %t/tsagent/agent.sock`],
      );
      const template = (name: string): string => readFileSync(join(ROOT, 'systemd', name), 'utf8');
      assert.equal(readFileSync(socketFile, 'utf8'), renderTemplate(template('tsagent.socket'), { node: NODE, script: BIN }));
      assert.match(readFileSync(envFile, 'utf8'), /^SSH_AUTH_SOCK=\$\{XDG_RUNTIME_DIR\}\/tsagent\/agent\.sock$/m);
      for (const f of [socketFile, serviceFile, envFile]) assert.equal(statSync(f).mode & 0o777, 0o644, f);

      // Idempotent: the same files again, reported unchanged and not rewritten.
      const inode = statSync(serviceFile).ino;
      const again = await tsagentService(['install', ...args], env);
      assert.equal(again.code, 0, again.stderr);
      for (const f of [socketFile, serviceFile, envFile]) assert.ok(lines(again.stdout).includes(`unchanged ${f}`), again.stdout);
      assert.equal(statSync(serviceFile).ino, inode);

      // An enabled socket (the link `systemctl --user enable` makes) must be disabled first.
      const wants = join(units, 'sockets.target.wants');
      await mkdir(wants);
      symlinkSync('../tsagent.socket', join(wants, 'tsagent.socket'));
      const refused = await tsagentService(['uninstall', ...args], env);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /tsagent\.socket is still enabled/);
      assert.ok(lines(refused.stderr).includes('  systemctl --user disable --now tsagent.socket'), refused.stderr);
      for (const f of [socketFile, serviceFile, envFile]) assert.ok(existsSync(f), `${f} must survive a refused uninstall`);

      // Disabled: uninstall removes exactly the three files and prints the stop lines.
      await removeDir(wants);
      await writeFile(join(units, 'other.service'), '[Service]\nExecStart=/bin/true\n');
      const gone = await tsagentService(['uninstall', ...args], env);
      assert.equal(gone.code, 0, gone.stderr);
      const goneOut = lines(gone.stdout);
      for (const l of [
        `removed ${socketFile}`,
        `removed ${controlFile}`,
        `removed ${serviceFile}`,
        `removed ${envFile}`,
        '  systemctl --user stop tsagent.socket tsagent.service',
        '  systemctl --user daemon-reload',
      ]) {
        assert.ok(goneOut.includes(l), `missing line ${JSON.stringify(l)} in:\n${gone.stdout}`);
      }
      assert.deepEqual(readdirSync(units), ['other.service']);
      assert.deepEqual(readdirSync(envDir), []);

      // Idempotent again.
      const twice = await tsagentService(['uninstall', ...args], env);
      assert.equal(twice.code, 0, twice.stderr);
      for (const f of [socketFile, serviceFile, envFile])
        assert.ok(lines(twice.stdout).includes(`not installed ${f}`), twice.stdout);
    },
  );

  test(
    'defaults: XDG_CONFIG_HOME, else HOME/.config; no note when systemd looks there',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const dir = await freshDir();
      const cfg = join(dir, 'cfg');
      const viaXdg = await tsagentService(['install'], { HOME: join(dir, 'home'), XDG_CONFIG_HOME: cfg });
      assert.equal(viaXdg.code, 0, viaXdg.stderr);
      for (const f of ['systemd/user/tsagent.socket', 'systemd/user/tsagent.service', 'environment.d/tsagent.conf']) {
        assert.ok(existsSync(join(cfg, f)), f);
      }
      assert.ok(!viaXdg.stdout.includes('note:'), viaXdg.stdout);
      assert.ok(!existsSync(join(dir, 'home')));

      const home = join(dir, 'home2');
      const viaHome = await tsagentService(['install'], { HOME: home });
      assert.equal(viaHome.code, 0, viaHome.stderr);
      assert.ok(lines(viaHome.stdout).includes(`wrote ${join(home, '.config/systemd/user/tsagent.service')}`), viaHome.stdout);
      assert.ok(lines(viaHome.stdout).includes(`wrote ${join(home, '.config/environment.d/tsagent.conf')}`), viaHome.stdout);
      const removed = await tsagentService(['uninstall'], { HOME: home });
      assert.equal(removed.code, 0, removed.stderr);
      assert.deepEqual(readdirSync(join(home, '.config/systemd/user')), []);

      const nowhere = await tsagentService(['install'], {});
      assert.equal(nowhere.code, 1);
      assert.match(nowhere.stderr, /^tsagent: cannot find the configuration directory/);
    },
  );

  test('a unit file tsagent did not write is never overwritten or removed', { timeout: CASE_TIMEOUT_MS }, async () => {
    const dir = await freshDir();
    const units = join(dir, 'units');
    const envDir = join(dir, 'env');
    const args = ['--dir', units, '--env-dir', envDir];
    const env = { HOME: join(dir, 'home') };
    await mkdir(units);
    const mine = '[Unit]\nDescription=my own\n';
    await writeFile(join(units, 'tsagent.service'), mine);

    const inst = await tsagentService(['install', ...args], env);
    assert.equal(inst.code, 1);
    assert.match(inst.stderr, /tsagent\.service exists and was not written by tsagent/);
    assert.equal(readFileSync(join(units, 'tsagent.service'), 'utf8'), mine);
    assert.deepEqual(readdirSync(units), ['tsagent.service'], 'nothing written when a check fails');
    assert.ok(!existsSync(envDir));

    const uninst = await tsagentService(['uninstall', ...args], env);
    assert.equal(uninst.code, 1);
    assert.match(uninst.stderr, /was not written by tsagent/);
    assert.equal(readFileSync(join(units, 'tsagent.service'), 'utf8'), mine);
  });
});

describe('systemd tools on the installed files', () => {
  test('systemd-analyze verify --user accepts the installed units', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const { units } = await install(await freshDir());
    const r = await verify(t, [
      join(units, 'tsagent.socket'),
      join(units, 'tsagent-control.socket'),
      join(units, 'tsagent.service'),
    ]);
    if (r === undefined) return;
    assert.equal(r.code, 0, `systemd-analyze verify failed:\n${r.stdout}\n${r.stderr}`);
    const ours = lines(r.stderr).filter((l) => l.includes('tsagent') || l.includes(units));
    assert.deepEqual(ours, [], `systemd-analyze warned about the units:\n${r.stderr}`);
  });

  test('systemd-analyze verify does flag a broken unit (the check is not vacuous)', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const dir = await freshDir();
    const { units } = await install(dir);
    const good = await readFile(join(units, 'tsagent.service'), 'utf8');
    const broken = join(dir, 'tsagent-broken.service');
    await writeFile(
      broken,
      good.replace(`ExecStart=${NODE} `, `ExecStart=${join(dir, 'no-such-node')} `).replace('UMask=', 'UMsk='),
    );
    const r = await verify(t, [broken]);
    if (r === undefined) return;
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /no-such-node is not executable/);
    assert.match(r.stderr, /Unknown key 'UMsk'/);
  });

  test('systemd parses a quoted Node path with a space and a % as exactly that path', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const dir = await freshDir();
    const odd = join(dir, 'node dir 100%');
    await mkdir(odd);
    symlinkSync(NODE, join(odd, 'node'));
    const unit = renderTemplate(readFileSync(join(ROOT, 'systemd', 'tsagent.service'), 'utf8'), {
      node: join(odd, 'node'),
      script: BIN,
    });
    assert.match(unit, /^ExecStart="[^"]*\/node dir 100%%\/node" /m);
    const file = join(dir, 'tsagent.service');
    await writeFile(file, unit);
    const r = await verify(t, [file]);
    if (r === undefined) return;
    // systemd checks that the first word of ExecStart= names an executable file: it would
    // not find one had it split at the space or kept %%.
    assert.equal(r.code, 0, `systemd-analyze verify failed:\n${r.stderr}`);
    assert.equal(r.stderr, '');
  });

  test(
    "systemd's environment.d generator sets SSH_AUTH_SOCK from the installed snippet",
    { timeout: CASE_TIMEOUT_MS },
    async (t) => {
      const generator = requirePeer(t, ENV_GENERATOR);
      if (generator === undefined) return;
      const dir = await freshDir();
      const cfg = join(dir, 'cfg');
      const inst = await tsagentService(['install'], { HOME: join(dir, 'home'), XDG_CONFIG_HOME: cfg });
      assert.equal(inst.code, 0, inst.stderr);
      const r = await run(generator, [], {
        env: cleanEnv({ HOME: join(dir, 'home'), XDG_CONFIG_HOME: cfg, XDG_RUNTIME_DIR: '/run/user/4242' }),
        timeoutMs: 20_000,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(lines(r.stdout).includes('SSH_AUTH_SOCK=/run/user/4242/tsagent/agent.sock'), r.stdout);
    },
  );
});

describe('the installed ExecStart= for real', () => {
  test(
    'socket activation: systemd-socket-activate, ssh-add through fd 3, SIGTERM exits 0',
    { timeout: CASE_TIMEOUT_MS },
    async (t) => {
      const peers = requirePeers(t, ['systemd-socket-activate', 'ssh-add', 'ssh-keygen']);
      if (peers === undefined) return;
      const dir = await freshDir();
      const { units } = await install(dir);
      // %t; its tsagent/ directory is what tsagent.socket's DirectoryMode=0700 makes.
      const runtime = join(dir, 'rt');
      await mkdir(join(runtime, 'tsagent'), { recursive: true, mode: 0o700 });
      const sock = join(runtime, 'tsagent', 'agent.sock');
      const argv = execStartArgv(await readFile(join(units, 'tsagent.service'), 'utf8'), runtime);
      assert.deepEqual(argv, [NODE, BIN, 'start', '-D', '-a', sock]);

      const d = await startDaemon(peers['systemd-socket-activate'], ['-l', sock, '-E', 'HOME', ...argv], {
        env: cleanEnv({ HOME: join(dir, 'home') }),
        name: 'systemd-socket-activate tsagent',
      });
      daemons.push(d);
      await waitFor(() => isSocket(sock) || !d.alive(), { timeoutMs: 10_000, what: `${sock} to be created` });
      assert.ok(d.alive(), d.stderr());
      // systemd-socket-activate binds with a fixed mode (0644 in systemd 252, where the unit
      // would have SocketMode=0600); whatever it is, tsagent must leave it alone.
      const made = lstatSync(sock);
      // Nothing has connected yet: the activator is still waiting, tsagent not started.
      assert.match(exeOf(d.pid), /systemd-socket-activate$/);

      const key = await generateKey(dir, 'ed25519', 'socket-activated');
      const env = cleanEnv({ HOME: join(dir, 'home'), SSH_AUTH_SOCK: sock });
      const empty = await run(peers['ssh-add'], ['-l'], { env, timeoutMs: 30_000 });
      assert.equal(empty.code, 1, `${empty.stdout}${empty.stderr}\n${d.stderr()}`);
      assert.match(empty.stdout, /The agent has no identities/);
      // The first connection made the activator exec tsagent in the same process (LISTEN_PID).
      assert.equal(exeOf(d.pid), NODE);
      // The "listening" line is written once the first request has been served (src/log.ts).
      await waitFor(() => /"socket":"fd 3"/.test(d.stderr()) || !d.alive(), { timeoutMs: 10_000, what: 'the listening line' });
      assert.match(d.stderr(), /"socket":"fd 3"/);

      const add = await run(peers['ssh-add'], [key.privatePath], { env, timeoutMs: 30_000 });
      assert.equal(add.code, 0, add.stderr);
      const list = await run(peers['ssh-add'], ['-l'], { env, timeoutMs: 30_000 });
      assert.equal(list.code, 0, list.stderr);
      assert.ok(list.stdout.includes(key.fingerprint), list.stdout);
      const sign = await run(peers['ssh-add'], ['-T', key.publicPath], { env, timeoutMs: 30_000 });
      assert.equal(sign.code, 0, `ssh-add -T (sign through the agent) failed: ${sign.stderr}`);

      process.kill(d.pid, 'SIGTERM');
      const end = await exitOf(d);
      assert.deepEqual(end, { code: 0, signal: null }, d.stderr());
      // tsagent served the inherited fd: it neither replaced, chmodded nor removed the socket.
      const left = lstatSync(sock);
      assert.ok(left.isSocket());
      assert.equal(left.ino, made.ino);
      assert.equal(left.mode, made.mode);
    },
  );

  test(
    'started alone (no socket unit): creates %t/tsagent/agent.sock 0600 itself; SIGTERM exits 0',
    { timeout: CASE_TIMEOUT_MS },
    async (t) => {
      const peers = requirePeers(t, ['ssh-add', 'ssh-keygen']);
      if (peers === undefined) return;
      const dir = await freshDir();
      const { units } = await install(dir);
      // RuntimeDirectory=tsagent, RuntimeDirectoryMode=0700 make the directory before ExecStart=.
      const runtime = join(dir, 'rt');
      await mkdir(join(runtime, 'tsagent'), { recursive: true, mode: 0o700 });
      const sock = join(runtime, 'tsagent', 'agent.sock');
      const [cmd, ...args] = execStartArgv(await readFile(join(units, 'tsagent.service'), 'utf8'), runtime);
      const d = await startDaemon(cmd, args, {
        env: cleanEnv({ HOME: join(dir, 'home'), XDG_RUNTIME_DIR: runtime }),
        name: 'tsagent.service alone',
      });
      daemons.push(d);
      await waitForSocket(sock, 15_000, d);
      assert.equal(lstatSync(sock).mode & 0o777, 0o600);

      const key = await generateKey(dir, 'ecdsa-256', 'standalone');
      const env = cleanEnv({ HOME: join(dir, 'home'), SSH_AUTH_SOCK: sock });
      const empty = await run(peers['ssh-add'], ['-l'], { env, timeoutMs: 30_000 });
      assert.equal(empty.code, 1, empty.stderr);
      const add = await run(peers['ssh-add'], [key.privatePath], { env, timeoutMs: 30_000 });
      assert.equal(add.code, 0, add.stderr);
      const list = await run(peers['ssh-add'], ['-l'], { env, timeoutMs: 30_000 });
      assert.ok(list.stdout.includes(key.fingerprint), list.stdout);

      process.kill(d.pid, 'SIGTERM');
      assert.deepEqual(await exitOf(d), { code: 0, signal: null }, d.stderr());
      assert.ok(!existsSync(sock), 'tsagent removes the socket it made');
    },
  );
});
