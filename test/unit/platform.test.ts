import assert from 'node:assert/strict';
import { createConnection, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadKoffi } from '../../src/native/koffi-loader';
import { loadLibc } from '../../src/native/libc';
import { socketFd, uidPeerCheck } from '../../src/server/peer-check';
import { WINDOWS_DEFAULT_PIPE, defaultSocketLocation, isWindowsPipe } from '../../src/stream/socket-path';

describe('socket locations per platform', () => {
  it("Windows: OpenSSH for Windows' named pipe by default, no directory", () => {
    assert.deepEqual(defaultSocketLocation({ XDG_RUNTIME_DIR: '/run/user/1' }, 42, 'win32'), { path: WINDOWS_DEFAULT_PIPE });
    assert.equal(WINDOWS_DEFAULT_PIPE, '\\\\.\\pipe\\openssh-ssh-agent');
  });

  it('recognises pipe paths, and only those', () => {
    for (const p of ['\\\\.\\pipe\\openssh-ssh-agent', '\\\\.\\pipe\\other', '\\\\?\\pipe\\x', '\\\\.\\PIPE\\x'])
      assert.ok(isWindowsPipe(p), p);
    for (const p of ['/tmp/agent.sock', 'pipe\\x', '\\\\.\\notpipe\\x', 'C:\\agent']) assert.ok(!isWindowsPipe(p), p);
  });

  it('Unix: $XDG_RUNTIME_DIR/tsagent/agent.sock, else a fresh $TMPDIR/tsagent-XXXXXX/agent.<pid>', () => {
    assert.deepEqual(defaultSocketLocation({ XDG_RUNTIME_DIR: '/run/user/7' }, 42, 'linux'), {
      path: '/run/user/7/tsagent/agent.sock',
      ownedDir: '/run/user/7/tsagent',
    });
    assert.equal(
      defaultSocketLocation({ XDG_RUNTIME_DIR: '/run/user/7' }, 42, 'linux').dirCreated,
      undefined,
      'found, not created: never removed',
    );
    const tmp = mkdtempSync(join(tmpdir(), 'tsagent-plat-'));
    try {
      const loc = defaultSocketLocation({ TMPDIR: tmp }, 42, 'linux');
      assert.match(loc.path, new RegExp(`^${tmp}/tsagent-[A-Za-z0-9]{6}/agent\\.42$`));
      assert.equal(loc.dirCreated, true);
      rmSync(loc.ownedDir!, { recursive: true });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('native protections', () => {
  it('are reported unavailable off Linux instead of failing', () => {
    // loadLibc caches per process; the platform branch is checked before any loading.
    const r = loadLibc();
    if (process.platform === 'linux') assert.ok('libc' in r, 'koffi loads on this Linux machine');
  });

  it('koffi is loaded by its native binary directly on glibc Linux, and works', () => {
    // The fast path (src/native/koffi-loader.ts) saves 10-15 ms of every start; a koffi update
    // that moves its binary must not silently fall back to the slow one.
    const { koffi, direct } = loadKoffi();
    const glibc =
      process.platform === 'linux' &&
      ['x64', 'arm64'].includes(process.arch) &&
      readFileSync('/proc/self/maps', 'latin1').includes('/libc.so.6');
    const musl = existsSync(`/lib/ld-musl-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`);
    assert.equal(direct, glibc && !musl, 'direct load where koffi would pick the glibc binary');
    if (process.platform === 'linux') {
      const getpid = koffi.load('libc.so.6').func('int getpid()');
      assert.equal(getpid(), process.pid);
    }
  });

  it('the peer check reads the real peer credentials of a Unix socket connection', async () => {
    const r = loadLibc();
    assert.ok('libc' in r);
    const dir = mkdtempSync(join(tmpdir(), 'tsagent-peer-'));
    const path = join(dir, 's');
    const accepted = new Promise<Socket>((resolve) => {
      const srv = createServer((s) => {
        resolve(s);
        srv.close();
      });
      srv.listen(path, () => createConnection(path));
    });
    const sock = await accepted;
    try {
      assert.ok(socketFd(sock) !== undefined);
      const own = uidPeerCheck(r.libc, process.getuid!())(sock);
      assert.ok(own.allowed);
      assert.equal(own.peer?.pid, process.pid);
      assert.equal(own.peer?.uid, process.getuid!());
      if (process.getuid!() !== 0) {
        const other = uidPeerCheck(r.libc, process.getuid!() + 1)(sock);
        assert.equal(other.allowed, false);
      }
    } finally {
      sock.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
