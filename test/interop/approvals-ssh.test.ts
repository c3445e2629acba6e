/**
 * End to end through the gate's ApprovalPort: real `ssh` logins to a real `sshd`, signed by
 * a confirm-constrained key (`ssh-add -c`) held by tsagent's keyring behind its socket.
 * - approved from the terminal handlers with --remember; a second login inside the grant
 *   asks nothing; after revoke it asks again (denied: the login fails);
 * - approved by clicking a desktop notification on a real dbus-daemon;
 * - withdrawn (notification closed, login refused) when `ssh-add -D` removes the key.
 * Until the control socket and the /proc reader are integrated, the terminal answers come
 * from the handlers in this process and the peer's exe/argv are read here (describePeer).
 */
import assert from 'node:assert/strict';
import { readlinkSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { Keyring } from '../../src/agent/keyring';
import { approvalHandlers } from '../../src/approvals/handlers';
import { PendingApprovals } from '../../src/approvals/pending';
import type { PromptChannel } from '../../src/approvals/channel';
import { NotificationChannel } from '../../src/approvals/notification';
import type { ProcessInfo } from '../../src/context/types';
import { loadLibc } from '../../src/native/libc';
import { AgentServer } from '../../src/server/agent-server';
import { uidPeerCheck } from '../../src/server/peer-check';
import { generateKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { removeDir, run, runOk, tempDir, waitFor } from '../helpers/proc';
import { busWithNotifications } from '../helpers/notification-server';
import { startSshd } from '../helpers/sshd';

function describe(pid: number, uid: number): ProcessInfo {
  let exe: string | null = null;
  let argv: string[] | null = null;
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
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
    describePeer: (peer) => (peer === null ? null : describe(peer.pid, peer.uid)),
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

test('ssh login through a confirm key: approve --remember, grant, revoke', async (t) => {
  const env = await setUp(t, []);
  if (env === undefined) return;
  const { bin, h, login } = env;

  // 1: asked; approved with --remember from the terminal.
  const first = login();
  await waitFor(() => h.approvals().length === 1, { what: 'the approval', timeoutMs: 20_000 });
  const pending = h.approvals()[0];
  assert.ok(pending !== undefined);
  assert.equal(pending.purpose, 'login');
  assert.equal(pending.process?.exe, bin.ssh);
  assert.equal(pending.key.comment, 'confirm-me');
  const grant = h.approve(pending.id, true).grant;
  assert.ok(grant !== null, 'a grant for ssh');
  const r1 = await first;
  assert.equal(r1.code, 0, r1.stderr);
  assert.match(r1.stdout, /logged-in/);

  // 2: inside the grant: no prompt.
  const r2 = await login();
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(h.approvals(), []);

  // 3: revoked: asked again; denied, so the login fails.
  h.revoke(grant.id);
  const third = login();
  await waitFor(() => h.approvals().length === 1, { what: 'the approval after revoke', timeoutMs: 20_000 });
  h.deny(h.approvals()[0]?.id ?? '');
  const r3 = await third;
  assert.notEqual(r3.code, 0);
});

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
