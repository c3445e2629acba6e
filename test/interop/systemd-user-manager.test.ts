/**
 * tsagent's units under a real `systemd --user` (systemd 252 here), set up as
 * shared/SYSTEMD-USER-MANAGER.md describes and undone afterwards (test/helpers/user-manager).
 * Opt-in, root only: TSAGENT_TEST_USER_MANAGER=1. It creates a user, mounts a tmpfs, bind-mounts
 * /run onto itself and makes /run/systemd/system for the run's duration, so it never runs by
 * default; opted in on a machine that cannot host it, it fails rather than skips.
 *
 * As that user, after `tsagent service install --shell-profile`:
 * - enable --now tsagent.socket: both sockets (agent, control) exist, 0600 in a 0700 directory;
 * - ~/.config/tsagent/config.toml registers ~/.ssh/id_ed25519_test (a plain key, 0600) and
 *   names the default audit file; the first ssh-add starts tsagent.service, which picks both
 *   fds by name and lists the registered key at once; ssh-add adds, lists and signs (-T)
 *   through it; the agent logs each peer's pid and uid;
 * - `ssh-keygen -Y sign -n git` signs with the registered key (private half read from $HOME on
 *   first use); the audit file (created by the agent, 0600 in 0700) has the `sign` record with
 *   purpose sign:git and process.exe /usr/bin/ssh-keygen, read from /proc inside the sandbox;
 *   `tsagent status --json` and `tsagent keys --json` answer over the activated control socket;
 * - the agent runs with NoNewPrivs and a seccomp filter (Seccomp: 2);
 * - a probe with the very sandbox of tsagent.service (its [Service] section, another
 *   ExecStart=) reads a peer's /proc/PID/exe, cmdline, cgroup and stat, a key file,
 *   known_hosts and config.toml in $HOME, appends to ~/.local/state/tsagent/audit.jsonl, passes
 *   D-Bus authentication on the session bus, watches a directory and runs a child;
 * - a notification approval on the user's session bus (dbus-daemon at %t/bus and
 *   test/helpers/notification-server.py, both as the user): an `ssh-add -c` key signs once
 *   the server answers `allow` to a Notify naming ssh-keygen, and not after `deny`; the first
 *   with DBUS_SESSION_BUS_ADDRESS in the unit's environment (the manager passes its own), the
 *   second with it removed (UnsetEnvironment=), through the $XDG_RUNTIME_DIR/bus fallback;
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
import { startNotificationServer } from '../helpers/notification-server';

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
      // A config with a registered key (a plain key file in $HOME) and the default audit file,
      // in place before the first client starts the service.
      const sshDir = join(m.home, '.ssh');
      mkdirSync(sshDir, { mode: 0o700 });
      chownSync(sshDir, m.uid, m.uid);
      const keygen = async (file: string, comment: string): Promise<void> => {
        const r = await m.asUser('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
        assert.equal(r.code, 0, r.stderr);
      };
      const registered = join(sshDir, 'id_ed25519_test');
      await keygen(registered, 'registered-in-config');
      assert.equal(lstatSync(registered).mode & 0o777, 0o600);
      assert.equal(lstatSync(registered).uid, m.uid);
      const auditFile = join(m.home, '.local', 'state', 'tsagent', 'audit.jsonl');
      writeAsUser(
        m,
        join(m.home, '.config', 'tsagent', 'config.toml'),
        '[audit]\nfile = "~/.local/state/tsagent/audit.jsonl"\n\n[[key]]\nfile = "~/.ssh/id_ed25519_test"\nname = "registered"\n',
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
      const key = join(sshDir, 'id_ed25519');
      await keygen(key, 'user-manager-test');
      const mainPid = async (): Promise<number> =>
        Number((await m.systemctl('show', '--property=MainPID', '--value', 'tsagent.service')).stdout.trim());
      const sshAdd = (...args: string[]) => m.asUser('ssh-add', args, { SSH_AUTH_SOCK: agentSock });
      // The registered key is listed at once, nothing added.
      const first = await sshAdd('-l');
      assert.equal(first.code, 0, `${first.stdout}${first.stderr}`);
      assert.match(first.stdout, /registered-in-config \(ED25519\)/);
      assert.equal(first.stdout.trim().split('\n').length, 1, first.stdout);
      const added = await sshAdd(key);
      assert.equal(added.code, 0, added.stderr);
      const listed = await sshAdd('-l');
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /user-manager-test \(ED25519\)/);
      const signed = await sshAdd('-T', `${key}.pub`);
      assert.equal(signed.code, 0, `ssh-add -T (a signature through the agent): ${signed.stderr}`);

      // git-style signing with the registered key: its private half read from $HOME on first
      // use; the audit record names the peer program, read from /proc inside the sandbox.
      const message = join(m.home, 'message.txt');
      writeAsUser(m, message, 'signed under systemd --user\n');
      const sshKeygenSign = (pub: string) =>
        m.asUser('ssh-keygen', ['-Y', 'sign', '-n', 'git', '-f', pub, message], { SSH_AUTH_SOCK: agentSock }, 120_000);
      const gitSig = await sshKeygenSign(`${registered}.pub`);
      assert.equal(gitSig.code, 0, `ssh-keygen -Y sign with the registered key: ${gitSig.stderr}`);
      assert.ok(existsSync(`${message}.sig`));
      const regFp = (await m.asUser('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${registered}.pub`])).stdout.split(' ')[1];
      const audit = logLines(auditFile);
      const signRecord = audit.find(
        (r) => r.event === 'sign' && (r.key as Record<string, unknown> | undefined)?.fingerprint === regFp,
      );
      assert.ok(signRecord !== undefined, `a sign record for ${regFp} in ${JSON.stringify(audit)}`);
      assert.equal(signRecord.decision, 'allow');
      assert.equal(signRecord.purpose, 'sign:git');
      const proc = signRecord.process as Record<string, unknown>;
      assert.equal(proc.exe, '/usr/bin/ssh-keygen');
      assert.equal(proc.uid, m.uid);
      assert.equal(lstatSync(dirname(auditFile)).mode & 0o777, 0o700);
      assert.equal(lstatSync(auditFile).mode & 0o777, 0o600);

      // The control commands, over the control socket systemd made.
      const tsagentCmd = (...args: string[]) => m.asUser(process.execPath, [BIN, ...args], { SSH_AUTH_SOCK: agentSock });
      const st = await tsagentCmd('status', '--json');
      assert.equal(st.code, 0, st.stderr);
      const stJson = JSON.parse(st.stdout) as Record<string, unknown>;
      t.diagnostic(`tsagent status --json: ${st.stdout.trim()}`);
      assert.equal(stJson.pid, await mainPid());
      assert.equal(stJson.config, join(m.home, '.config', 'tsagent', 'config.toml'));
      assert.deepEqual(stJson.keys, { held: 1, registered: 1 });
      const ks = await tsagentCmd('keys', '--json');
      assert.equal(ks.code, 0, ks.stderr);
      const keys = JSON.parse(ks.stdout) as Array<Record<string, unknown>>;
      const reg = keys.find((k) => k.fingerprint === regFp);
      assert.ok(reg !== undefined, ks.stdout);
      assert.equal(reg.source, 'config');
      assert.equal(reg.name, 'registered');
      assert.equal(reg.loaded, true, 'decrypted on first use');

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
      const agentPid = await mainPid();
      assert.ok(agentPid > 1);
      const status = readFileSync(`/proc/${agentPid}/status`, 'utf8');
      assert.match(status, /^NoNewPrivs:\s+1$/m);
      assert.match(status, /^Seccomp:\s+2$/m);

      // The coming features, inside the same sandbox: a probe unit with tsagent.service's settings.
      writeAsUser(m, join(m.home, '.ssh', 'id_probe.pub'), readFileSync(`${key}.pub`, 'utf8'));
      writeAsUser(m, join(m.home, '.ssh', 'known_hosts'), `localhost ${readFileSync(`${key}.pub`, 'utf8')}`);
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

      // A notification approval over the user's session bus: dbus-daemon at %t/bus and the
      // notification server, both as the user (stopped by pid at teardown / after the test).
      const busSock = join(rt, 'bus');
      await m.spawnAsUser('dbus-daemon', ['--session', `--address=unix:path=${busSock}`, '--nofork', '--nopidfile']);
      assert.ok(await eventually(() => isSocket(busSock), 10_000), 'the session bus listens at %t/bus');
      const server = await startNotificationServer(
        t,
        { address: `unix:path=${busSock}` },
        {
          wrap: (cmd, args, env) => m.argvAsUser(cmd, args, env),
        },
      );
      assert.ok(server !== undefined, 'python3-dbus');
      t.after(() => server.stop());
      const managerEnv = (await m.systemctl('show-environment')).stdout;
      t.diagnostic(`manager environment has DBUS_SESSION_BUS_ADDRESS: ${managerEnv.includes('DBUS_SESSION_BUS_ADDRESS=')}`);
      const confirmKey = join(sshDir, 'id_ed25519_confirm');
      await keygen(confirmKey, 'confirm-me');
      /** Adds the key with -c, signs with it, answers the notification with `action`. */
      const approveBy = async (action: 'allow' | 'deny', count: number) => {
        const addC = await sshAdd('-c', confirmKey);
        assert.equal(addC.code, 0, addC.stderr);
        const signing = sshKeygenSign(`${confirmKey}.pub`);
        const n = await server.waitForNotify(count, 60_000);
        assert.match(`${n.summary}\n${n.body}`, /ssh-keygen/, 'the prompt names the program');
        assert.ok(n.actions.includes('allow') && n.actions.includes('deny'), JSON.stringify(n.actions));
        server.invoke(n.id, action);
        return signing;
      };
      // (a) The unit's environment as the manager gives it.
      const agentEnv = readFileSync(`/proc/${await mainPid()}/environ`, 'utf8').split('\0');
      t.diagnostic(
        `tsagent.service DBUS_SESSION_BUS_ADDRESS: ${agentEnv.find((e) => e.startsWith('DBUS_SESSION_BUS_ADDRESS=')) ?? '(unset)'}`,
      );
      const allowed = await approveBy('allow', 1);
      assert.equal(allowed.code, 0, `allowed by notification: ${allowed.stderr}`);
      // (b) Without DBUS_SESSION_BUS_ADDRESS in the unit: the $XDG_RUNTIME_DIR/bus fallback.
      // (`systemctl --user unset-environment` does not remove a variable the manager itself
      // started with; a drop-in's UnsetEnvironment= does.)
      writeAsUser(
        m,
        join(unitDir, 'tsagent.service.d', 'test-no-bus-address.conf'),
        '[Service]\nUnsetEnvironment=DBUS_SESSION_BUS_ADDRESS\n',
      );
      await m.systemctl('daemon-reload');
      await m.systemctl('stop', 'tsagent.service');
      const relisted = await sshAdd('-l'); // activates a fresh agent
      assert.equal(relisted.code, 0, relisted.stderr);
      const freshEnv = readFileSync(`/proc/${await mainPid()}/environ`, 'utf8').split('\0');
      assert.ok(!freshEnv.some((e) => e.startsWith('DBUS_SESSION_BUS_ADDRESS=')), freshEnv.join(' '));
      assert.ok(freshEnv.includes(`XDG_RUNTIME_DIR=${rt}`), freshEnv.join(' '));
      const denied = await approveBy('deny', 2);
      assert.notEqual(denied.code, 0, 'denied by notification: no signature');
      const approvals = logLines(auditFile).filter((r) => r.event === 'approval');
      t.diagnostic(`approval records: ${JSON.stringify(approvals.map((r) => [r.decision, r.reason]))}`);
      const answered = approvals.filter((r) => /by notification$/.test(String(r.reason)));
      assert.deepEqual(
        answered.map((r) => [r.decision, String(r.reason).replace(/^approval \w+ /, '')]),
        [
          ['allow', 'approved by notification'],
          ['deny', 'denied by notification'],
        ],
      );

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
