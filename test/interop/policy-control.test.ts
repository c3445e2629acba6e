/**
 * The control socket and the `tsagent` commands (POLICY.md §5), end to end: the real daemon
 * (`tsagent start -D --config`), the real CLI binary (`node bin/tsagent.js`), key files from
 * ssh-keygen. Also: an invalid config stops `start` with exit 1 before any socket exists,
 * and `reload` with a broken file keeps the old configuration.
 */
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { TSAGENT_BIN, startAgentDaemon } from '../helpers/daemons';
import { generateKey } from '../helpers/keys';
import { startOpenSSHAgent } from '../helpers/openssh-agent';
import { requirePeer } from '../helpers/peers';
import { cleanEnv, removeDir, run, tempDir } from '../helpers/proc';

function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  return run(process.execPath, [TSAGENT_BIN, ...args], {
    env: opts.env ?? cleanEnv(),
    ...(opts.input === undefined ? {} : { input: opts.input }),
    timeoutMs: 60_000,
  });
}

/** One raw request line, one response line. */
function rawRequest(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no answer'));
    }, 10_000);
    s.on('connect', () => s.write(line));
    s.on('data', (b: Buffer) => {
      got += b.toString();
      if (got.includes('\n')) {
        clearTimeout(timer);
        s.destroy();
        resolve(got.trim());
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

test('control socket: status, keys, unlock-key, reload against the running agent', async (t) => {
  if (requirePeer(t, 'ssh-keygen') === undefined) return;
  const keysDir = await tempDir('tsagent-ctlkeys-');
  t.after(() => removeDir(keysDir));
  const gh = await generateKey(keysDir, 'ed25519', 'gh@test', { name: 'gh' });
  const enc = await generateKey(keysDir, 'ed25519', 'enc@test', { name: 'enc', passphrase: 'sesame-42' });
  const config = join(keysDir, 'config.toml');
  const good = `[agent]\nmax-offered = 3\n[[key]]\nfile = "${gh.privatePath}"\nname = "github"\nhosts = ["github.com"]\n[[key]]\nfile = "${enc.privatePath}"\nunlock-for = "1h"\n`;
  writeFileSync(config, good);
  const agent = await startAgentDaemon('tsagent', { args: ['--config', config] });
  t.after(() => agent.stop());
  const ctl = `${agent.socketPath}.ctl`;
  const st = lstatSync(ctl);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
  const env = cleanEnv({ SSH_AUTH_SOCK: agent.socketPath });

  const status = await cli(['status', '--json'], { env });
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(s).sort(), ['config', 'control', 'keys', 'locked', 'pid', 'socket', 'uptimeSeconds']);
  assert.equal(s.pid, agent.child.pid);
  assert.equal(s.socket, agent.socketPath);
  assert.equal(s.control, ctl);
  assert.equal(s.config, config);
  assert.deepEqual(s.keys, { held: 0, registered: 2 });
  assert.equal(s.locked, false);
  assert.equal(typeof s.uptimeSeconds, 'number');
  const human = await cli(['status', '--socket', agent.socketPath], { env: cleanEnv() });
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /keys: +0 held, 2 registered/);

  const keys = await cli(['keys', '--json'], { env });
  assert.equal(keys.code, 0, keys.stderr);
  const list = JSON.parse(keys.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(list[0], {
    name: 'github',
    comment: 'gh@test',
    fingerprint: gh.fingerprint,
    type: 'ssh-ed25519',
    source: 'config',
    loaded: false,
    hosts: ['github.com'],
    confirm: false,
    lifetimeLeft: null,
    lastUsed: null,
  });
  assert.equal(list[1].name, 'enc@test');
  assert.equal(list[1].loaded, false);

  // unlock-key reads the passphrase from stdin (not a terminal here).
  const wrong = await cli(['unlock-key', 'enc@test'], { env, input: 'not it\n' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /enc: wrong passphrase/);
  assert.doesNotMatch(wrong.stderr, /not it/);
  const right = await cli(['unlock-key', 'enc@test', '--json'], { env, input: 'sesame-42\n' });
  assert.equal(right.code, 0, right.stderr);
  const after = JSON.parse((await cli(['keys', '--json'], { env })).stdout) as Array<Record<string, unknown>>;
  assert.equal(after[1].loaded, true);
  assert.ok(typeof after[1].lifetimeLeft === 'number' && after[1].lifetimeLeft > 3500);
  const unknown = await cli(['unlock-key', 'nobody'], { env, input: 'x\n' });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no registered key/);

  // reload with a broken file: exit 1 naming file, line and key; the old config stays.
  writeFileSync(config, `${good}[[rule]]\naction = "perhaps"\n`);
  const broken = await cli(['reload'], { env });
  assert.equal(broken.code, 1);
  assert.ok(broken.stderr.includes(`${config}:11: rule[1].action: must be one of`), broken.stderr);
  const still = JSON.parse((await cli(['keys', '--json'], { env })).stdout) as unknown[];
  assert.equal(still.length, 2);
  // A fixed file is taken.
  writeFileSync(config, `[[key]]\nfile = "${gh.privatePath}"\nname = "only"\n`);
  const ok = await cli(['reload', '--json'], { env });
  assert.equal(ok.code, 0, ok.stderr);
  const now = JSON.parse((await cli(['keys', '--json'], { env })).stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(
    now.map((k) => k.name),
    ['only'],
  );

  // The protocol itself: bad lines and unknown commands are answered, not fatal.
  assert.match(await rawRequest(ctl, 'garbage\n'), /"ok":false.*"code":"USAGE"/);
  assert.match(await rawRequest(ctl, '{"v":1,"id":5,"command":"launch-missiles"}\n'), /"id":5,"ok":false.*unknown command/);
  assert.match(await rawRequest(ctl, '{"v":1,"id":6,"command":"status"}\n'), /"id":6,"ok":true/);

  // Both sockets go away with the agent.
  await agent.stop();
  assert.equal(existsSync(agent.socketPath), false);
  assert.equal(existsSync(ctl), false);
});

test('commands against an agent without a control socket, or no agent, exit 1 saying so', async (t) => {
  if (requirePeer(t, 'ssh-agent') === undefined) return;
  const openssh = await startOpenSSHAgent(t);
  for (const cmd of ['status', 'keys', 'reload']) {
    const r = await cli([cmd, '--socket', openssh.socketPath]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /has no control socket/);
  }
  const none = await cli(['status']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /SSH_AUTH_SOCK is not set/);
});

test('start --config with an invalid file exits 1 before any socket exists', async (t) => {
  const dir = await tempDir('tsagent-badcfg-');
  t.after(() => removeDir(dir));
  const config = join(dir, 'config.toml');
  writeFileSync(config, '[agent]\noffer = "all"\nmax-offered = "five"\n');
  const sock = join(dir, 'agent.sock');
  for (const mode of [['-D'], []]) {
    const r = await cli(['start', ...mode, '-a', sock, '--config', config], { env: cleanEnv({ HOME: dir }) });
    assert.equal(r.code, 1, `${mode.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`${config}:3: agent.max-offered: must be a whole number`), r.stderr);
    assert.equal(existsSync(sock), false);
    assert.equal(existsSync(`${sock}.ctl`), false);
  }
  // The default path is read too: a broken $XDG_CONFIG_HOME/tsagent/config.toml stops the agent.
  mkdirSync(join(dir, 'xdg', 'tsagent'), { recursive: true });
  const xdgFile = join(dir, 'xdg', 'tsagent', 'config.toml');
  writeFileSync(xdgFile, '[[rule]]\nprocesses = ["git"]\n');
  const r = await cli(['start', '-D', '-a', sock], { env: cleanEnv({ HOME: dir, XDG_CONFIG_HOME: join(dir, 'xdg') }) });
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.stderr.includes(`${xdgFile}:1: rule[1]: needs an "action"`), r.stderr);
  assert.equal(existsSync(sock), false);
});
