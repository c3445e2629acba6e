/**
 * Socket activation with both sockets (POLICY.md §5): systemd passes the agent socket and
 * the control socket, named "agent" and "control" in LISTEN_FDNAMES; `tsagent status`
 * reaches the daemon through the second. Driven by the real systemd-socket-activate.
 */
import assert from 'node:assert/strict';
import { lstatSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { TSAGENT_BIN } from '../helpers/daemons';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, deferred, removeDir, run, startDaemon, tempDir, waitFor } from '../helpers/proc';

function isSocket(p: string): boolean {
  try {
    return lstatSync(p).isSocket();
  } catch {
    return false;
  }
}

test('socket activation passes the control socket, picked by its name', async (t) => {
  const peers = requirePeers(t, ['systemd-socket-activate', 'ssh-add']);
  if (peers === undefined) return;
  const dir = await tempDir('tsagent-act-');
  const defer = deferred(t);
  defer(() => removeDir(dir));
  await mkdir(join(dir, 'rt'), { mode: 0o700 });
  const sock = join(dir, 'rt', 'agent.sock');
  const ctl = `${sock}.ctl`;
  const d = await startDaemon(
    peers['systemd-socket-activate'],
    ['-l', sock, '-l', ctl, '--fdname=agent:control', '-E', 'HOME', process.execPath, TSAGENT_BIN, 'start', '-D', '-a', sock],
    { env: cleanEnv({ HOME: dir }), name: 'systemd-socket-activate tsagent' },
  );
  defer(() => d.stop());
  await waitFor(() => (isSocket(sock) && isSocket(ctl)) || !d.alive(), { timeoutMs: 10_000, what: 'both sockets' });
  assert.ok(d.alive(), d.stderr());
  const env = cleanEnv({ HOME: dir, SSH_AUTH_SOCK: sock });
  const list = await run(peers['ssh-add'], ['-l'], { env, timeoutMs: 30_000 });
  assert.equal(list.code, 1, `${list.stdout}${list.stderr}\n${d.stderr()}`);
  const status = await run(process.execPath, [TSAGENT_BIN, 'status', '--json'], { env, timeoutMs: 30_000 });
  assert.equal(status.code, 0, `${status.stderr}\n${d.stderr()}`);
  const s = JSON.parse(status.stdout) as { socket: string; control: string; pid: number };
  assert.equal(s.socket, 'fd 3');
  assert.equal(s.control, 'fd 4');
  assert.equal(s.pid, d.pid);
});
