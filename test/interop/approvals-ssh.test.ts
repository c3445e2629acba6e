/**
 * End to end through the gate's ApprovalPort: real `ssh` logins to a real `sshd`, signed by
 * a confirm-constrained key (`ssh-add -c`) held by tsagent's keyring behind its socket.
 * - the real daemon with a config's confirm rule, answered by `tsagent approve --remember`
 *   from a second process; a second login inside the grant asks nothing; after `tsagent
 *   revoke` it asks again, and `tsagent deny` fails the login;
 * - approved by clicking a desktop notification on a real dbus-daemon;
 * - withdrawn (notification closed, login refused) when `ssh-add -D` removes the key.
 * The notification tests run the keyring in this process (their bus is private to the test)
 * and read the peer's exe/argv here (describePeer).
 */
import assert from 'node:assert/strict';
import { readlinkSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { Keyring } from '../../src/agent/keyring';
import { approvalHandlers } from '../../src/approvals/handlers';
import { TSAGENT_BIN, startAgentDaemon } from '../helpers/daemons';
import { PendingApprovals } from '../../src/approvals/pending';
import type { PromptChannel } from '../../src/approvals/channel';
import { NotificationChannel } from '../../src/approvals/notification';
import type { ProcessInfo } from '../../src/context/types';
import { loadLibc } from '../../src/native/libc';
import { AgentServer } from '../../src/server/agent-server';
import { uidPeerCheck } from '../../src/server/peer-check';
import { generateKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, deferred, removeDir, run, runOk, tempDir, waitFor } from '../helpers/proc';
import { busWithNotifications } from '../helpers/notification-server';
import { startSshd } from '../helpers/sshd';

function describe(pid: number, uid: number): ProcessInfo {
  let exe: string | null = null;
  let argv: string[] | null = null;
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
  } catch {
    /* gone */
  }
  return { pid, uid, exe, argv, unit: null, parents: null };
}

const PEERS = ['ssh', 'sshd', 'ssh-add', 'ssh-keygen'] as const;

/** tsagent (keyring + socket) asking through `approvals`, a confirm key in it, an sshd that accepts it. */
async function setUp(t: TestContext, channels: PromptChannel[]) {
  const bin = requirePeers(t, PEERS);
  if (bin === undefined) return undefined;
  const loaded = loadLibc();
  assert.ok('libc' in loaded, 'koffi is needed for SO_PEERCRED');
  const dir = await tempDir('tsagent-appr-');
  t.after(() => removeDir(dir));
  const approvals = new PendingApprovals({ channels });
  t.after(() => approvals.close());
  const keyring = new Keyring({ approvals });
  const server = new AgentServer({
    agent: keyring,
    peerCheck: uidPeerCheck(loaded.libc, process.getuid?.() ?? 0),
    describePeer: (peer) => {
      if (peer === null) return undefined;
      const info = describe(peer.pid, peer.uid);
      return { read: () => info, release: () => undefined };
    },
  });
  const sock = join(dir, 'agent.sock');
  await server.listen({ kind: 'path', path: sock });
  t.after(() => server.close());
  const key = await generateKey(dir, 'ed25519', 'confirm-me');
  await runOk(bin['ssh-add'], ['-c', key.privatePath], { env: { PATH: process.env.PATH, SSH_AUTH_SOCK: sock } });
  const sshd = await startSshd({ authorizedKeys: [key.publicLine] }, t);
  const login = (): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    run(bin.ssh, sshd.sshArgs([], ['echo', 'logged-in']), { env: sshd.clientEnv(sock), timeoutMs: 30_000 });
  return { bin, sock, approvals, h: approvalHandlers(approvals), login };
}

/** setUp, with approvals shown as desktop notifications on a private bus. */
async function notifyingSetUp(t: TestContext) {
  const notifications = await busWithNotifications(t);
  if (notifications === undefined) return undefined;
  const { bus, server } = notifications;
  const env = await setUp(t, [new NotificationChannel({ env: { DBUS_SESSION_BUS_ADDRESS: bus.address } })]);
  return env === undefined ? undefined : { ...env, server };
}

test(
  'the real daemon: a confirm rule, answered by `tsagent approve --remember` from a second process; grant, revoke, deny',
  { timeout: 240_000 },
  async (t) => {
    const bin = requirePeers(t, PEERS);
    if (bin === undefined) return;
    const dir = await tempDir('tsagent-appr-daemon-');
    const defer = deferred(t);
    defer(() => removeDir(dir));
    const key = await generateKey(dir, 'ed25519', 'asked-about');
    const config = join(dir, 'config.toml');
    const audit = join(dir, 'audit.jsonl');
    // Logins need a yes; only the terminal method (no bus, no askpass here); an unanswered prompt
    // would deny after 60 s, so a login that succeeds unanswered proves the grant was used.
    writeFileSync(
      config,
      `[agent]\nprompt = ["terminal"]\nprompt-timeout = "60s"\nremember = "10m"\n[audit]\nfile = "${audit}"\n[[rule]]\npurposes = ["login"]\naction = "confirm"\n`,
    );
    const agent = await startAgentDaemon('tsagent', { args: ['--config', config] });
    defer(() => agent.stop());
    const cliEnv = cleanEnv({ SSH_AUTH_SOCK: agent.socketPath, HOME: dir });
    await runOk(bin['ssh-add'], [key.privatePath], { env: cliEnv });
    const sshd = await startSshd({ authorizedKeys: [key.publicLine] }, t);
    const login = () =>
      run(bin.ssh, sshd.sshArgs([], ['echo', 'logged-in']), { env: sshd.clientEnv(agent.socketPath), timeoutMs: 90_000 });
    const tsagent = async (...args: string[]): Promise<unknown> => {
      const r = await run(process.execPath, [TSAGENT_BIN, ...args, '--json'], { env: cliEnv });
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as unknown;
    };
    const approvals = async (): Promise<
      Array<{ id: string; purpose: string; process: { exe: string | null } | null; key: { comment: string } }>
    > =>
      (await tsagent('approvals')) as Array<{
        id: string;
        purpose: string;
        process: { exe: string | null } | null;
        key: { comment: string };
      }>;
    const onePending = async () => {
      let seen: Awaited<ReturnType<typeof approvals>> = [];
      await waitFor(async () => (seen = await approvals()).length === 1, {
        what: 'a pending approval',
        timeoutMs: 30_000,
        intervalMs: 200,
      });
      return seen[0];
    };

    // 1: asked; approved with --remember from a second process.
    const first = login();
    const pending = await onePending();
    assert.equal(pending.purpose, 'login');
    assert.equal(pending.process?.exe, realpathSync(bin.ssh));
    assert.equal(pending.key.comment, 'asked-about');
    const answer = (await tsagent('approve', pending.id, '--remember')) as {
      id: string;
      allowed: boolean;
      grant: { id: string; exe: string } | null;
    };
    assert.equal(answer.allowed, true);
    assert.ok(answer.grant !== null, 'a grant for ssh');
    assert.equal(answer.grant.exe, realpathSync(bin.ssh));
    const r1 = await first;
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, /logged-in/);
    const grants = (await tsagent('grants')) as Array<{ id: string }>;
    assert.deepEqual(
      grants.map((g) => g.id),
      [answer.grant.id],
    );

    // 2: inside the grant: nobody answers, and the login works.
    const r2 = await login();
    assert.equal(r2.code, 0, r2.stderr);

    // 3: revoked: asked again; denied from the terminal, so the login fails.
    assert.deepEqual(await tsagent('revoke', answer.grant.id), { revoked: 1 });
    assert.deepEqual(await tsagent('grants'), []);
    const third = login();
    const again = await onePending();
    const denied = (await tsagent('deny', again.id)) as { allowed: boolean };
    assert.equal(denied.allowed, false);
    const r3 = await third;
    assert.notEqual(r3.code, 0);

    // The audit log tells the story: asked, approved, grant used, revoked, denied.
    const reasons = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; decision: string; reason: string });
    const approvalsSeen = reasons.filter((r) => r.event === 'approval').map((r) => r.reason);
    assert.ok(
      approvalsSeen.some((r) => r === `approval ${pending.id} approved by terminal`),
      JSON.stringify(approvalsSeen),
    );
    assert.ok(
      approvalsSeen.some((r) => r === `grant ${answer.grant!.id}`),
      JSON.stringify(approvalsSeen),
    );
    assert.ok(
      approvalsSeen.some((r) => r === `grant ${answer.grant!.id} revoked`),
      JSON.stringify(approvalsSeen),
    );
    assert.ok(
      approvalsSeen.some((r) => r === `approval ${again.id} denied by terminal`),
      JSON.stringify(approvalsSeen),
    );
    const signs = reasons.filter((r) => r.event === 'sign').map((r) => r.decision);
    assert.deepEqual(signs, ['allow', 'allow', 'deny']);
  },
);

test('ssh login approved by a desktop notification on a real session bus', async (t) => {
  const env = await notifyingSetUp(t);
  if (env === undefined) return;
  const { server } = env;
  const login = env.login();
  const n = await server.waitForNotify(1, 20_000);
  // The long harness argv keeps its head and its tail (the destination and command).
  assert.match(n.body, /^Program: ssh \(\S*ssh -F \/dev\/null .* … .*@127\.0\.0\.1 echo logged-in\) pid \d+$/m);
  // No known_hosts line names sshd's key for tsagent here: the host key stands for the host.
  assert.match(n.body, /^Destination: user \S+ on the host with key SHA256:\S+$/m);
  assert.match(n.body, /^Purpose: log in$/m);
  assert.match(n.body, /^Key: confirm-me SHA256:\S+$/m);
  server.invoke(n.id, 'allow');
  const r = await login;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /logged-in/);
});

test('removing the key while its prompt is open refuses the login and closes the notification', async (t) => {
  const env = await notifyingSetUp(t);
  if (env === undefined) return;
  const { server } = env;
  const login = env.login();
  const n = await server.waitForNotify(1, 20_000);
  await runOk(env.bin['ssh-add'], ['-D'], { env: { PATH: process.env.PATH, SSH_AUTH_SOCK: env.sock } });
  await server.waitForClose(n.id);
  const r = await login;
  assert.notEqual(r.code, 0);
  assert.deepEqual(env.h.approvals(), []);
});
