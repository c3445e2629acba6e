/**
 * The agent's own protections, checked from outside with real processes: a client of another
 * uid gets no answer even through a world-writable socket (SO_PEERCRED check), and an agent
 * started as an unprivileged user is not dumpable (its /proc/PID files belong to root) and
 * has RLIMIT_CORE 0. Needs root to switch users with setpriv (CI runs as root).
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, cpSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { TSAGENT_BIN, startAgentDaemon } from '../helpers/daemons';
import { requirePeers, skipOrFail } from '../helpers/peers';
import { deferred, removeDir, run, startDaemon, waitFor, waitForSocket } from '../helpers/proc';

function needRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  skipOrFail(t, 'not root (these tests switch users; CI runs them as root)');
  return false;
}

/** uid/gid of `nobody` from /etc/passwd. */
function nobody(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('nobody:'));
  assert.ok(line, 'a nobody user');
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/**
 * The tsagent script, where `nobody` can read it: the checkout itself when its directories
 * are open to others, else a copy of what the agent needs to run (a CI clone may sit in a
 * private directory).
 */
async function tsagentReadableBy(setpriv: string, scratch: string): Promise<string> {
  const probe = await run(setpriv, ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'test', '-r', TSAGENT_BIN]);
  if (probe.code === 0) return TSAGENT_BIN;
  const root = resolve(TSAGENT_BIN, '../..');
  const copy = join(scratch, 'pkg');
  for (const part of ['package.json', 'bin', 'dist/src', 'node_modules'])
    cpSync(join(root, part), join(copy, part), { recursive: true });
  chmodSync(scratch, 0o755);
  return join(copy, 'bin', 'tsagent.js');
}

describe('process and peer protections', () => {
  it('a client running as another user gets no answer, even through a world-writable socket', async (t) => {
    const bin = requirePeers(t, ['ssh-add', 'setpriv'] as const);
    if (bin === undefined || !needRoot(t)) return;
    const agent = await startAgentDaemon('tsagent', { args: ['-d'] });
    t.after(() => agent.stop());
    // Open the file-system fence on purpose: only the uid check is left.
    chmodSync(agent.dir, 0o755);
    chmodSync(agent.socketPath, 0o666);
    const env = { PATH: process.env.PATH, SSH_AUTH_SOCK: agent.socketPath };
    const asRoot = await run(bin['ssh-add'], ['-l'], { env });
    assert.equal(asRoot.code, 1, `root (and the owner) are answered: ${asRoot.stdout}`);
    assert.match(asRoot.stdout, /The agent has no identities/);
    const asNobody = await run(bin.setpriv, ['--reuid=nobody', '--regid=nogroup', '--clear-groups', bin['ssh-add'], '-l'], {
      env,
    });
    assert.notEqual(asNobody.code, 0);
    assert.doesNotMatch(asNobody.stdout, /no identities/, 'nobody got no answer');
    await waitFor(() => /"msg":"connection refused"/.test(agent.stderr()), { what: 'the refusal to be logged' });
    const line = agent
      .stderr()
      .split('\n')
      .find((l) => l.includes('connection refused'))!;
    const entry = JSON.parse(line) as { peerUid: number; peerPid: number; level: number };
    assert.equal(entry.peerUid, nobody().uid);
    assert.ok(entry.peerPid > 0);
    assert.equal(entry.level, 40);
  });

  it('started as nobody, the agent is not dumpable and has no core limit', async (t) => {
    const bin = requirePeers(t, ['setpriv'] as const);
    if (bin === undefined || !needRoot(t)) return;
    const dir = mkdtempSync(join(tmpdir(), 'tsagent-nobody-'));
    // The agent writes its audit log under HOME=dir until it stops: its stop, registered
    // later, runs first.
    const defer = deferred(t);
    defer(() => removeDir(dir));
    const { uid, gid } = nobody();
    chownSync(dir, uid, gid);
    const sock = join(dir, 'agent.sock');
    const script = await tsagentReadableBy(bin.setpriv, dir);
    const daemon = await startDaemon(
      bin.setpriv,
      ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, script, 'start', '-D', '-a', sock],
      { env: { PATH: process.env.PATH, HOME: dir } },
    );
    defer(() => daemon.stop());
    await waitForSocket(sock, 15_000, daemon);
    // setpriv execs node in place, so the daemon's pid is the agent's.
    const status = statSync(`/proc/${daemon.pid}/status`);
    assert.equal(readFileSync(`/proc/${daemon.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1], String(uid), 'runs as nobody');
    assert.equal(status.uid, 0, '/proc/PID/status belongs to root: PR_SET_DUMPABLE is 0');
    assert.match(readFileSync(`/proc/${daemon.pid}/limits`, 'utf8'), /Max core file size\s+0\s+0/);
    assert.ok(userInfo().uid === 0);
  });
});
