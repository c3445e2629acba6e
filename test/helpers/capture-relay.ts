/**
 * A recording relay in front of a real agent: clients (ssh, ssh-keygen, git) connect to
 * `socketPath`; every byte is passed through to the upstream agent socket unchanged, and the
 * relay keeps, per connection, what the request context is built from: the peer's process
 * facts (readPeerProcess with SO_PEERCRED / SO_PEERPIDFD, read at accept as the server does),
 * the data of each sign request and each session-bind's contents.
 */
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { readPeerProcess } from '../../src/context/process';
import type { ProcessInfo } from '../../src/context/types';
import { loadLibc } from '../../src/native/libc';
import { SESSION_BIND } from '../../src/protocol/session-bind';
import { SshReader } from '../../src/protocol/wire';
import { socketFd } from '../../src/server/peer-check';
import { removeDir, tempDir } from './proc';

const SIGN_REQUEST = 13;
const EXTENSION = 27;

export interface CapturedConnection {
  /** The peer's facts, read when the connection was accepted. */
  readonly process: ProcessInfo | null;
  /** Whether a pidfd pinned the peer. */
  pinned: boolean;
  readonly signData: Buffer[];
  readonly sessionBinds: Buffer[];
}

export interface CaptureRelay {
  readonly socketPath: string;
  readonly connections: CapturedConnection[];
  stop(): Promise<void>;
}

function parseFrames(buf: Buffer, conn: CapturedConnection): Buffer {
  let off = 0;
  while (buf.length - off >= 4) {
    const len = buf.readUInt32BE(off);
    if (buf.length - off - 4 < len) break;
    const msg = buf.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    try {
      const r = new SshReader(msg);
      const type = r.byte();
      if (type === SIGN_REQUEST) {
        r.string();
        conn.signData.push(Buffer.from(r.string()));
      } else if (type === EXTENSION && r.text() === SESSION_BIND) {
        conn.sessionBinds.push(Buffer.from(r.rest()));
      }
    } catch {
      /* not ours to judge: the upstream agent answers it */
    }
  }
  return buf.subarray(off);
}

export async function startCaptureRelay(upstreamPath: string): Promise<CaptureRelay> {
  const dir = await tempDir('capture-');
  const socketPath = join(dir, 'relay.sock');
  const connections: CapturedConnection[] = [];
  const sockets = new Set<Socket>();
  const loaded = loadLibc();
  const libc = 'libc' in loaded ? loaded.libc : undefined;
  const server: Server = createServer((client) => {
    sockets.add(client);
    const fd = socketFd(client);
    const cred = fd !== undefined ? libc?.peerCredentials(fd) : undefined;
    const pidfd = fd !== undefined ? libc?.peerPidfd?.(fd) : undefined;
    const conn: CapturedConnection = {
      process: cred === undefined ? null : readPeerProcess(cred, pidfd !== undefined ? { pidfd } : {}),
      pinned: pidfd !== undefined,
      signData: [],
      sessionBinds: [],
    };
    connections.push(conn);
    const upstream = createConnection(upstreamPath);
    sockets.add(upstream);
    let pending: Buffer = Buffer.alloc(0);
    client.on('data', (d: Buffer) => {
      pending = parseFrames(Buffer.concat([pending, d]), conn);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => client.write(d));
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    socketPath,
    connections,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeDir(dir);
    },
  };
}
