/**
 * tsagent's units under a real `systemd --user` (systemd 252 here), set up as
 * shared/SYSTEMD-USER-MANAGER.md describes and undone afterwards (test/helpers/user-manager).
 * Opt-in, root only: TSAGENT_TEST_USER_MANAGER=1. It creates a user, mounts a tmpfs, bind-mounts
 * /run onto itself and makes /run/systemd/system for the run's duration, so it never runs by
 * default; opted in on a machine that cannot host it, it fails rather than skips.
 *
 * As that user, after `tsagent service install --shell-profile`:
 * - enable --now tsagent.socket: both sockets (agent, control) exist, 0600 in a 0700 directory;
 * - the first ssh-add starts tsagent.service, which picks both fds by name; ssh-add adds, lists
 *   and signs (-T) through it; the agent logs each peer's pid and uid;
 * - the agent runs with NoNewPrivs and a seccomp filter (Seccomp: 2);
 * - a probe with the very sandbox of tsagent.service (its [Service] section, another
 *   ExecStart=) reads a peer's /proc/PID/exe, cmdline, cgroup and stat, a key file,
 *   known_hosts and config.toml in $HOME, appends to ~/.local/state/tsagent/audit.jsonl, passes
 *   D-Bus authentication on the session bus, watches a directory and runs a child;
 * - stop tsagent.socket: no socket file is left and the agent stops; disable --now likewise;
 * - uninstall removes the units and the profile line.
 */
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { systemdPathWord } from '../../src/cli/systemd-units';
import { startUserManager, userManagerUnavailable } from '../helpers/user-manager';
import type { UserManager } from '../helpers/user-manager';
import { sleep } from '../helpers/proc';

const ROOT = resolve(__dirname, '../../..');
const BIN = join(ROOT, 'bin', 'tsagent.js');
const PROBE = join(ROOT, 'dist', 'test', 'helpers', 'sandbox-probe.js');
const OPT_IN = process.env.TSAGENT_TEST_USER_MANAGER === '1';

let um: UserManager | undefined;
after(async () => {
  await um?.teardown();
});

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Polls `check` every 100 ms for up to `ms`. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

/** Writes `text` to `path` (and its directories) owned by the test user. */
function writeAsUser(m: UserManager, path: string, text: string, mode = 0o644): void {
  const parts: string[] = [];
  for (let d = dirname(path); d !== m.home && !existsSync(d); d = dirname(d)) parts.unshift(d);
  for (const d of parts) {
    mkdirSync(d, { mode: 0o700 });
    chownSync(d, m.uid, m.uid);
  }
  writeFileSync(path, text, { mode });
  chownSync(path, m.uid, m.uid);
}

/** The installed tsagent.service with its ExecStart= replaced and no [Install]: same sandbox. */
function probeUnit(service: string, execStart: string): string {
  return `${service
    .split('\n[Install]')[0]
    .replace(/^ExecStart=.*$/m, `ExecStart=${execStart}`)
    .replace(/^Type=exec$/m, 'Type=oneshot')
    .replace(/^PartOf=.*$/m, '')}\n`;
}

function logLines(path: string): Array<Record<string, unknown>> {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the units under a real systemd --user', () => {
  test(
    'activation, ssh-add through both named sockets, the sandbox, no socket left at stop',
    { timeout: 300_000 },
    async (t: TestContext) => {
      if (!OPT_IN) {
        t.skip('opt-in: TSAGENT_TEST_USER_MANAGER=1, as root (creates a user, mounts, fakes /run/systemd/system)');
        return;
      }
      const unavailable = userManagerUnavailable();
      assert.equal(unavailable, undefined, `TSAGENT_TEST_USER_MANAGER=1 but ${unavailable}`);
      um = await startUserManager();
      const m = um;
      const rt = m.runtimeDir;
      const agentSock = join(rt, 'tsagent', 'agent.sock');
      const controlSock = `${agentSock}.ctl`;
      const unitDir = join(m.home, '.config', 'systemd', 'user');

      const readable = await m.asUser('test', ['-r', BIN, '-a', '-r', PROBE]);
      assert.equal(readable.code, 0, `${m.user} cannot read ${BIN}: put the package where every user can read it`);

      // Install as the README says, with the profile line.
      const inst = await m.asUser(process.execPath, [BIN, 'service', 'install', '--shell-profile'], { SHELL: '/bin/bash' });
      assert.equal(inst.code, 0, inst.stderr);
      assert.ok(inst.stdout.includes(`added the SSH_AUTH_SOCK line to ${join(m.home, '.profile')}`), inst.stdout);
      const security = await m.asUser('systemd-analyze', ['--user', 'security', '--no-pager', 'tsagent.service']);
      t.diagnostic(
        security.stdout
          .split('\n')
          .filter((l) => l.includes('Overall exposure'))
          .join(' ')
          .trim(),
      );

      // Debug logging to a file the test can read (no journald here): the same ExecStart= with -d.
      const service = readFileSync(join(unitDir, 'tsagent.service'), 'utf8');
      const exec = /^ExecStart=(.*) start -D (.*)$/m.exec(service);
      assert.ok(exec !== null, service);
      const log = join(rt, 'tsagent-test.log');
      writeAsUser(
        m,
        join(unitDir, 'tsagent.service.d', 'test-debug.conf'),
        `[Service]\nExecStart=\nExecStart=${exec[1]} start -d ${exec[2]}\nStandardError=append:%t/tsagent-test.log\n`,
      );
      await m.systemctl('daemon-reload');
      await m.systemctl('enable', '--now', 'tsagent.socket');
      assert.ok(isSocket(agentSock) && isSocket(controlSock), 'both sockets are listening');
      for (const s of [agentSock, controlSock]) assert.equal(lstatSync(s).mode & 0o777, 0o600, s);
      assert.equal(lstatSync(dirname(agentSock)).mode & 0o777, 0o700);
      assert.equal(
        (await m.asUser('systemctl', ['--user', 'is-active', 'tsagent.service'])).stdout.trim(),
        'inactive',
        'not started before a client',
      );

      // add / list / sign with the real ssh-add, through the activated service.
      const key = join(m.home, '.ssh', 'id_ed25519');
      mkdirSync(dirname(key), { mode: 0o700 });
      chownSync(dirname(key), m.uid, m.uid);
      const gen = await m.asUser('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'user-manager-test', '-f', key]);
      assert.equal(gen.code, 0, gen.stderr);
      const sshAdd = (...args: string[]) => m.asUser('ssh-add', args, { SSH_AUTH_SOCK: agentSock });
      const empty = await sshAdd('-l');
      assert.equal(empty.code, 1, `${empty.stdout}${empty.stderr}`);
      assert.match(empty.stdout, /The agent has no identities/);
      const added = await sshAdd(key);
      assert.equal(added.code, 0, added.stderr);
      const listed = await sshAdd('-l');
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /user-manager-test \(ED25519\)/);
      const signed = await sshAdd('-T', `${key}.pub`);
      assert.equal(signed.code, 0, `ssh-add -T (a signature through the agent): ${signed.stderr}`);

      // The agent took both fds by name and saw each peer's pid and uid.
      const lines = logLines(log);
      const listening = lines.find((l) => l.msg === 'listening');
      assert.ok(listening !== undefined, readFileSync(log, 'utf8'));
      assert.match(String(listening.socket), /^fd \d+$/);
      assert.match(String(listening.control), /^fd \d+$/);
      assert.notEqual(listening.socket, listening.control);
      const opened = lines.filter((l) => l.msg === 'connection opened');
      assert.ok(opened.length >= 4, `one connection per ssh-add: ${JSON.stringify(opened)}`);
      for (const o of opened) {
        assert.equal(o.peerUid, m.uid);
        assert.ok(typeof o.peerPid === 'number' && o.peerPid > 1);
      }

      // The running agent: no new privileges, seccomp filter in force.
      const mainPid = Number((await m.systemctl('show', '--property=MainPID', '--value', 'tsagent.service')).stdout.trim());
      assert.ok(mainPid > 1);
      const status = readFileSync(`/proc/${mainPid}/status`, 'utf8');
      assert.match(status, /^NoNewPrivs:\s+1$/m);
      assert.match(status, /^Seccomp:\s+2$/m);

      // The coming features, inside the same sandbox: a probe unit with tsagent.service's settings.
      writeAsUser(m, join(m.home, '.ssh', 'id_probe.pub'), readFileSync(`${key}.pub`, 'utf8'));
      writeAsUser(m, join(m.home, '.ssh', 'known_hosts'), `localhost ${readFileSync(`${key}.pub`, 'utf8')}`);
      writeAsUser(m, join(m.home, '.config', 'tsagent', 'config.toml'), '[agent]\n');
      const peer = await m.spawnAsUser('/bin/sleep', ['600']);
      assert.ok(await eventually(() => readlinkSync(`/proc/${peer.pid}/exe`) === '/usr/bin/sleep', 10_000), 'peer exec');
      const report = join(rt, 'tsagent', 'probe.json');
      const probeExec = [process.execPath, PROBE].map((p) => systemdPathWord(p, p)).join(' ');
      writeAsUser(
        m,
        join(unitDir, 'tsagent-probe.service'),
        probeUnit(service, `${probeExec} %t/tsagent/probe.json ${peer.pid}`),
      );
      await m.systemctl('daemon-reload');
      const probe = await m.asUser('systemctl', ['--user', 'start', 'tsagent-probe.service'], {}, 120_000);
      assert.equal(probe.code, 0, `${probe.stdout}${probe.stderr}`);
      const found = JSON.parse(readFileSync(report, 'utf8')) as Record<string, unknown>;
      t.diagnostic(`sandbox probe: ${JSON.stringify(found)}`);
      assert.deepEqual(
        {
          procExe: found.procExe,
          procExeValue: found.procExeValue,
          procCmdline: found.procCmdline,
          procCgroup: found.procCgroup,
          procStat: found.procStat,
          keyFile: found.keyFile,
          knownHosts: found.knownHosts,
          config: found.config,
          auditAppend: found.auditAppend,
          inotify: found.inotify,
          child: found.child,
          bus: found.bus,
        },
        {
          procExe: 'ok',
          procExeValue: '/usr/bin/sleep',
          procCmdline: 'ok',
          procCgroup: 'ok',
          procStat: 'ok',
          keyFile: 'ok',
          knownHosts: 'ok',
          config: 'ok',
          auditAppend: 'ok',
          inotify: 'ok',
          child: 'ok',
          bus: 'ok',
        },
      );
      const auditDir = join(m.home, '.local', 'state', 'tsagent');
      assert.equal(lstatSync(auditDir).mode & 0o777, 0o700);
      assert.equal(lstatSync(join(auditDir, 'audit.jsonl')).mode & 0o777, 0o600);
      await peer.stop();

      // Stopping the socket leaves no socket file and stops the agent with it (PartOf=).
      await m.systemctl('stop', 'tsagent.socket');
      assert.ok(
        await eventually(() => !existsSync(agentSock) && !existsSync(controlSock), 10_000),
        'socket files removed at stop',
      );
      assert.equal((await m.asUser('systemctl', ['--user', 'is-active', 'tsagent.service'])).stdout.trim(), 'inactive');
      const refused = await sshAdd('-l');
      assert.equal(refused.code, 2, 'no agent to connect to');
      assert.match(refused.stderr, /No such file or directory/);

      // Again, and disable --now.
      await m.systemctl('start', 'tsagent.socket');
      assert.ok(isSocket(agentSock) && isSocket(controlSock));
      await m.systemctl('disable', '--now', 'tsagent.socket');
      assert.ok(
        await eventually(() => !existsSync(agentSock) && !existsSync(controlSock), 10_000),
        'socket files removed at disable --now',
      );

      // Uninstall: units and profile line gone.
      await m.asUser('rm', ['-rf', join(unitDir, 'tsagent.service.d'), join(unitDir, 'tsagent-probe.service')]);
      const un = await m.asUser(process.execPath, [BIN, 'service', 'uninstall']);
      assert.equal(un.code, 0, un.stderr);
      for (const f of ['tsagent.socket', 'tsagent-control.socket', 'tsagent.service'])
        assert.ok(!existsSync(join(unitDir, f)), f);
      assert.ok(!readFileSync(join(m.home, '.profile'), 'utf8').includes('tsagent'), 'profile line removed');
      await m.systemctl('daemon-reload');
    },
  );
});
