/**
 * Packaging, as a user gets it: `npm pack` makes a tarball with the runtime files only, and
 * `npm install -g <tarball>` into a fresh prefix gives a working `tsagent` that the real
 * ssh-add talks to, and whose `service install` points systemd at the installed copy.
 *
 * `npm pack --ignore-scripts`: `prepare` (tsc) already ran for this test run (pretest), and
 * rebuilding dist/ here would rewrite files that concurrently running test files are loading.
 * npm itself runs with the caller's npm cache (--prefer-offline) and a bounded time; the
 * registry is only asked for what the cache lacks.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { generateKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { removeDir, run, startDaemon, tempDir, waitForSocket } from '../helpers/proc';
import type { DaemonHandle } from '../helpers/proc';

const ROOT = resolve(__dirname, '../../..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const NPM_INSTALL_TIMEOUT_MS = 180_000;

const dirs: string[] = [];
const daemons: DaemonHandle[] = [];
after(async () => {
  for (const d of daemons) await d.stop();
  for (const d of dirs) await removeDir(d);
});

/** The caller's environment minus npm's lifecycle variables (npm test sets npm_config_*). */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  return env;
}

test('npm pack + npm install -g: a working tsagent on PATH', { timeout: 400_000 }, async (t) => {
  const peers = requirePeers(t, ['npm', 'tar', 'ssh-add', 'ssh-keygen']);
  if (peers === undefined) return;
  const dir = await tempDir('tsagent-pkg-');
  dirs.push(dir);
  const packDir = join(dir, 'pack');
  const prefix = join(dir, 'prefix');
  await mkdir(packDir);

  const pack = await run(peers.npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], {
    cwd: ROOT,
    env: npmEnv(),
    timeoutMs: 120_000,
  });
  assert.equal(pack.code, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout) as Array<{ filename: string }>;
  assert.ok(info !== undefined, pack.stdout);
  const tarball = join(packDir, info.filename);
  assert.equal(info.filename, `tsagent-${VERSION}.tgz`);

  await t.test('the tarball holds the runtime files and no tests, benches or sources', async () => {
    const list = await run(peers.tar, ['-tzf', tarball], { timeoutMs: 30_000 });
    assert.equal(list.code, 0, list.stderr);
    const entries = list.stdout.split('\n').filter((l) => l !== '');
    for (const f of [
      'package/package.json',
      'package/README.md',
      'package/bin/tsagent.js',
      'package/dist/src/index.js',
      'package/dist/src/cli/main.js',
      'package/dist/src/cli/service.js',
      'package/dist/bundle/cli/tsagent.js',
      'package/dist/bundle/cli/tsagent.js.cache',
      'package/dist/bundle/cli/dep-sshpk.js',
      'package/dist/bundle/cli/dep-dbus-native.js',
      'package/systemd/tsagent.socket',
      'package/systemd/tsagent-control.socket',
      'package/systemd/tsagent.service',
      'package/systemd/environment.d/tsagent.conf',
    ]) {
      assert.ok(entries.includes(f), `${f} missing from the tarball`);
    }
    const unwanted = entries.filter((e) => /^package\/(test|bench|src|dist\/test|dist\/bench|node_modules|\.ci)\//.test(e));
    assert.deepEqual(unwanted, []);
  });

  const inst = await run(
    peers.npm,
    ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball],
    { env: npmEnv(), timeoutMs: NPM_INSTALL_TIMEOUT_MS },
  );
  assert.equal(inst.code, 0, `npm install -g failed:\n${inst.stdout}\n${inst.stderr}`);
  const bin = join(prefix, 'bin', 'tsagent');
  const installed = join(prefix, 'lib', 'node_modules', 'tsagent');
  assert.ok(existsSync(bin), `${bin} not created`);
  assert.equal(realpathSync(bin), join(installed, 'bin', 'tsagent.js'));

  // Only the prefix's bin and node's own directory on PATH: the installed copy, not the repo.
  const env = { PATH: `${join(prefix, 'bin')}:${dirname(process.execPath)}:/usr/bin:/bin`, HOME: dir };

  await t.test('the dependencies bundled apart load from the installed copy', async () => {
    const cli = join(installed, 'dist', 'bundle', 'cli');
    const probe =
      `const s = require(${JSON.stringify(join(cli, 'dep-sshpk.js'))});` +
      `const d = require(${JSON.stringify(join(cli, 'dep-dbus-native.js'))});` +
      `process.stdout.write(typeof s.parsePrivateKey + ' ' + typeof d.sessionBus);`;
    const r = await run(process.execPath, ['-e', probe], { env, timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'function function');
  });

  await t.test('tsagent --version runs from PATH', async () => {
    const r = await run('tsagent', ['--version'], { env, timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), VERSION);
  });

  await t.test('tsagent start -D -a SOCK serves the real ssh-add; SIGTERM exits 0', async () => {
    const sock = join(dir, 's.sock');
    const d = await startDaemon(bin, ['start', '-D', '-a', sock], { env, name: 'installed tsagent' });
    daemons.push(d);
    await waitForSocket(sock, 15_000, d);
    const sshEnv = { PATH: env.PATH, HOME: dir, SSH_AUTH_SOCK: sock };
    const empty = await run(peers['ssh-add'], ['-l'], { env: sshEnv, timeoutMs: 30_000 });
    assert.equal(empty.code, 1, empty.stderr);
    assert.match(empty.stdout, /The agent has no identities/);
    const key = await generateKey(dir, 'ed25519', 'from-the-tarball');
    const add = await run(peers['ssh-add'], [key.privatePath], { env: sshEnv, timeoutMs: 30_000 });
    assert.equal(add.code, 0, add.stderr);
    const list = await run(peers['ssh-add'], ['-l'], { env: sshEnv, timeoutMs: 30_000 });
    assert.equal(list.code, 0, list.stderr);
    assert.ok(list.stdout.includes(key.fingerprint), list.stdout);
    process.kill(d.pid, 'SIGTERM');
    const end = await Promise.race([
      d.exited,
      new Promise<never>((_r, reject) => setTimeout(() => reject(new Error('no exit 10 s after SIGTERM')), 10_000).unref()),
    ]);
    assert.deepEqual(end, { code: 0, signal: null }, d.stderr());
  });

  await t.test('the installed service install points ExecStart= at the installed package', async () => {
    const units = join(dir, 'units');
    const r = await run(bin, ['service', 'install', '--dir', units, '--env-dir', join(dir, 'env')], { env, timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    const service = readFileSync(join(units, 'tsagent.service'), 'utf8');
    assert.deepEqual(
      service.split('\n').filter((l) => l.startsWith('ExecStart=')),
      [`ExecStart=${process.execPath} ${join(installed, 'bin', 'tsagent.js')} start -D -a %t/tsagent/agent.sock`],
    );
  });
});
