/**
 * The peer process facts (POLICY.md §1) of real children connected to a real Unix socket:
 * SO_PEERCRED and SO_PEERPIDFD read at accept (koffi), then /proc. The pid-reuse guard: a
 * pidfd whose process is gone, or a pid that now names another process, gives null facts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCgroupUnit, parseCmdline, parseProcStat } from '../../src/context/proc-files';
import { bareProcessInfo, clearProcessCache, peerProcessSource, readPeerProcess } from '../../src/context/process';
import type { ProcessInfo } from '../../src/context/types';
import { loadLibc } from '../../src/native/libc';
import type { Libc } from '../../src/native/libc';
import { socketFd } from '../../src/server/peer-check';
import { findPeerOrFail } from '../helpers/peers';
import { cleanEnv, removeDir, tempDir, waitFor } from '../helpers/proc';

const linux = process.platform === 'linux';
/** SSH2_AGENT_IDENTITIES_ANSWER with no keys. */
const EMPTY_LIST = Buffer.from([0, 0, 0, 5, 12, 0, 0, 0, 0]);

interface Accepted {
  readonly sock: Socket;
  readonly pid: number;
  readonly uid: number;
  readonly pidfd: number | undefined;
}

describe('peer process from /proc', { skip: !linux && 'Linux /proc only' }, () => {
  let dir: string;
  let server: Server;
  let libc: Libc;
  const accepted: Accepted[] = [];

  before(async () => {
    dir = await tempDir('tsagent-proc-');
    const loaded = loadLibc();
    assert.ok('libc' in loaded, `koffi/libc must load on Linux: ${'unavailable' in loaded ? loaded.unavailable : ''}`);
    libc = loaded.libc;
    server = createServer((sock) => {
      const fd = socketFd(sock)!;
      const cred = libc.peerCredentials(fd)!;
      accepted.push({ sock, pid: cred.pid, uid: cred.uid, pidfd: libc.peerPidfd?.(fd) });
      sock.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(join(dir, 's.sock'), resolve));
  });
  after(async () => {
    for (const a of accepted) a.sock.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await removeDir(dir);
  });

  /** Runs `sh -c 'ssh-add -l; exit 0'` against the socket and returns its accepted connection (ssh-add waits for a reply). */
  async function connectChild(): Promise<{ a: Accepted; exited: Promise<void> }> {
    const before = accepted.length;
    const child = spawn('/bin/sh', ['-c', 'ssh-add -l; exit 0'], {
      env: cleanEnv({ SSH_AUTH_SOCK: join(dir, 's.sock') }),
      stdio: 'ignore',
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await waitFor(() => accepted.length > before, { timeoutMs: 10_000 });
    return { a: accepted[before], exited };
  }

  /** A connection from this process itself, as accepted. */
  async function selfConnection(): Promise<Accepted> {
    const before = accepted.length;
    const client = createConnection(join(dir, 's.sock'));
    client.on('error', () => undefined);
    await waitFor(() => accepted.length > before, { timeoutMs: 10_000 });
    return accepted[before];
  }

  it('a real ssh-add child: exe, argv, parents (sh, then this node), unit, uid — pinned by a pidfd', async () => {
    findPeerOrFail('ssh-add');
    const { a, exited } = await connectChild();
    assert.notEqual(a.pidfd, undefined, 'SO_PEERPIDFD works on this kernel (6.5+)');
    const p = readPeerProcess({ pid: a.pid, uid: a.uid }, a.pidfd !== undefined ? { pidfd: a.pidfd } : {});
    a.sock.end(EMPTY_LIST);
    await exited;
    assert.equal(p.pid, a.pid);
    assert.equal(p.uid, process.getuid?.());
    assert.equal(p.exe, realpathSync(findPeerOrFail('ssh-add')));
    assert.deepEqual(p.argv, ['ssh-add', '-l']);
    assert.equal(p.parents?.[0], realpathSync('/bin/sh'));
    assert.equal(p.parents?.[1], realpathSync(process.execPath));
    assert.ok(p.parents.length <= 4);
    assert.equal(
      p.unit,
      parseCgroupUnit(readFileSync('/proc/self/cgroup', 'utf8')) ?? null,
      'same cgroup as its ancestor, this test',
    );
  });

  it('without a pidfd the start time guards the reads', async () => {
    const { a, exited } = await connectChild();
    const p = readPeerProcess({ pid: a.pid, uid: a.uid });
    a.sock.end(EMPTY_LIST);
    await exited;
    assert.equal(p.exe?.endsWith('/ssh-add'), true);
    // Gone (exited and reaped): nothing is guessed.
    assert.deepEqual(readPeerProcess({ pid: a.pid, uid: a.uid }), bareProcessInfo({ pid: a.pid, uid: a.uid }));
  });

  it('a recycled pid: the pidfd pins the dead peer, so another live process behind the pid gives nulls', async () => {
    const { a, exited } = await connectChild();
    assert.notEqual(a.pidfd, undefined);
    a.sock.end(EMPTY_LIST);
    await exited;
    // The peer is gone; pretend its pid now names a live process (this one).
    const p = readPeerProcess({ pid: process.pid, uid: a.uid }, { pidfd: a.pidfd! });
    assert.deepEqual(p, bareProcessInfo({ pid: process.pid, uid: a.uid }));
  });

  it('read on first use when a pidfd pins the peer: the live peer is described, a gone one is not', async () => {
    const live = await connectChild();
    assert.notEqual(live.a.pidfd, undefined);
    const source = peerProcessSource({ pid: live.a.pid, uid: live.a.uid }, { pidfd: live.a.pidfd! });
    const first = source.read();
    assert.equal(first.exe?.endsWith('/ssh-add'), true);
    assert.equal(source.read(), first, 'read once, the same facts after');
    live.a.sock.end(EMPTY_LIST);
    await live.exited;

    const gone = await connectChild();
    const late = peerProcessSource({ pid: gone.a.pid, uid: gone.a.uid }, { pidfd: gone.a.pidfd! });
    gone.a.sock.end(EMPTY_LIST);
    await gone.exited;
    // Asked only after the peer exited: the pidfd says so, nothing is guessed.
    assert.deepEqual(late.read(), bareProcessInfo({ pid: gone.a.pid, uid: gone.a.uid }));
  });

  it('without a pidfd the source reads at once, and release() closes an unread pidfd', async () => {
    const { a, exited } = await connectChild();
    const eager = peerProcessSource({ pid: a.pid, uid: a.uid });
    a.sock.end(EMPTY_LIST);
    await exited;
    assert.equal(eager.read().exe?.endsWith('/ssh-add'), true, 'read before the peer went away');

    const next = await connectChild();
    const pidfd = next.a.pidfd!;
    peerProcessSource({ pid: next.a.pid, uid: next.a.uid }, { pidfd }).release();
    assert.throws(() => readFileSync(`/proc/self/fdinfo/${pidfd}`), /ENOENT/, 'the pidfd is closed');
    next.a.sock.end(EMPTY_LIST);
    await next.exited;
  });

  it('the same process connecting again is recognised by its pidfd (pidfs), a new process is read afresh', async () => {
    const first = await connectChild();
    const second = await connectChild();
    try {
      clearProcessCache();
      const a = readPeerProcess({ pid: first.a.pid, uid: first.a.uid }, { pidfd: first.a.pidfd! });
      const b = readPeerProcess({ pid: second.a.pid, uid: second.a.uid }, { pidfd: second.a.pidfd! });
      assert.notEqual(a.pid, b.pid);
      assert.equal(a.exe?.endsWith('/ssh-add'), true);
      assert.equal(b.exe?.endsWith('/ssh-add'), true);
      // This test process, over two connections: the second read is the first's facts.
      const self1 = await selfConnection();
      const self2 = await selfConnection();
      const s1 = readPeerProcess({ pid: self1.pid, uid: self1.uid }, { pidfd: self1.pidfd! });
      const s2 = readPeerProcess({ pid: self2.pid, uid: self2.uid }, { pidfd: self2.pidfd! });
      assert.equal(s1.pid, process.pid);
      assert.equal(s2, s1);
    } finally {
      first.a.sock.end(EMPTY_LIST);
      second.a.sock.end(EMPTY_LIST);
      await Promise.all([first.exited, second.exited]);
    }
  });

  it("a peer that exec'd another program after connecting is not described as that program", async () => {
    const python = findPeerOrFail('python3');
    const before = accepted.length;
    // Connects, keeps the socket across exec, then becomes `sleep` (a stand-in for a program
    // a rule would trust): asked only afterwards, the facts must not say `sleep`.
    const script = [
      'import socket, os, time',
      's = socket.socket(socket.AF_UNIX)',
      `s.connect(${JSON.stringify(join(dir, 's.sock'))})`,
      'os.set_inheritable(s.fileno(), True)',
      'time.sleep(0.5)',
      "os.execv('/bin/sleep', ['sleep', '10'])",
    ].join('\n');
    const child = spawn(python, ['-c', script], { stdio: 'ignore' });
    try {
      await waitFor(() => accepted.length > before, { timeoutMs: 10_000 });
      const a = accepted[before];
      assert.notEqual(a.pidfd, undefined);
      const source = peerProcessSource({ pid: a.pid, uid: a.uid }, { pidfd: a.pidfd! });
      await waitFor(() => readlinkSync(`/proc/${a.pid}/exe`).endsWith('/sleep'), { timeoutMs: 10_000 });
      assert.deepEqual(source.read(), bareProcessInfo({ pid: a.pid, uid: a.uid }));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('read() after release() describes nothing: the pin is gone', async () => {
    const { a, exited } = await connectChild();
    const source = peerProcessSource({ pid: a.pid, uid: a.uid }, { pidfd: a.pidfd! });
    source.release();
    assert.deepEqual(source.read(), bareProcessInfo({ pid: a.pid, uid: a.uid }));
    a.sock.end(EMPTY_LIST);
    await exited;
  });

  it('other platforms: only the kernel pid and uid', async () => {
    assert.deepEqual(readPeerProcess({ pid: process.pid, uid: 1 }, { platform: 'darwin' }), {
      pid: process.pid,
      uid: 1,
      exe: null,
      argv: null,
      unit: null,
      parents: null,
    });
  });

  it('an ancestor that started after its child is a recycled pid and ends the chain', async () => {
    const root = join(dir, 'fakeproc');
    const stat = (pid: number, comm: string, ppid: number, start: number): string =>
      `${pid} (${comm}) S ${ppid} ${Array.from({ length: 17 }, () => '0').join(' ')} ${start} 0 0\n`;
    const mk = (pid: number, ppid: number, start: number, exe: string): void => {
      mkdirSync(join(root, String(pid)), { recursive: true });
      writeFileSync(join(root, String(pid), 'stat'), stat(pid, 'a) (b', ppid, start));
      symlinkSync(exe, join(root, String(pid), 'exe'));
      writeFileSync(join(root, String(pid), 'cmdline'), 'prog\0arg with space\0');
      writeFileSync(
        join(root, String(pid), 'cgroup'),
        '0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-x.scope\n',
      );
    };
    mk(300, 200, 5000, '/usr/bin/prog');
    mk(200, 100, 4000, '/usr/bin/parent');
    mk(100, 1, 9000, '/usr/bin/impostor'); // started after its "child": the real parent died
    const p: ProcessInfo = readPeerProcess({ pid: 300, uid: 7 }, { procRoot: root });
    assert.deepEqual(p, {
      pid: 300,
      uid: 7,
      exe: '/usr/bin/prog',
      argv: ['prog', 'arg with space'],
      unit: 'app-x.scope',
      parents: ['/usr/bin/parent'],
    });
  });

  it('reading costs (diagnostic, not asserted; best of 20 rounds on a shared machine)', (t) => {
    const parents = readPeerProcess({ pid: process.pid, uid: 0 }).parents?.length;
    const n = 25;
    let first = Infinity;
    let again = Infinity;
    for (let round = 0; round < 20; round++) {
      let t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        clearProcessCache();
        readPeerProcess({ pid: process.pid, uid: 0 });
      }
      first = Math.min(first, Number(process.hrtime.bigint() - t0) / n / 1000);
      t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) readPeerProcess({ pid: process.pid, uid: 0 });
      again = Math.min(again, Number(process.hrtime.bigint() - t0) / n / 1000);
    }
    t.diagnostic(
      `readPeerProcess (${parents} parents): ${first.toFixed(1)} µs first connection, ${again.toFixed(1)} µs same process again`,
    );
  });
});

describe('/proc file parsers', () => {
  it('stat: fields counted after the last parenthesis', () => {
    assert.deepEqual(parseProcStat(`12 (we (ird) x) S 7 ${'0 '.repeat(17)}123456 0`), { ppid: 7, startTime: '123456' });
    assert.equal(parseProcStat('garbage'), undefined);
    assert.equal(parseProcStat('1 (x) S'), undefined);
  });
  it('cmdline and cgroup', () => {
    assert.deepEqual(parseCmdline(Buffer.from('a\0b\0')), ['a', 'b']);
    assert.equal(parseCmdline(Buffer.alloc(0)), undefined);
    assert.equal(parseCgroupUnit('0::/system.slice/sshd.service\n'), 'sshd.service');
    assert.equal(parseCgroupUnit('0::/user.slice/user-1000.slice/session-3.scope\n'), 'session-3.scope');
    assert.equal(parseCgroupUnit('12:cpu:/x\n1:name=systemd:/user.slice/user@1000.service/app.slice\n'), 'user@1000.service');
    assert.equal(parseCgroupUnit('0::/\n'), undefined);
  });
});
