/**
 * getKeys / AgentClient against things that are not an agent: nothing configured, nothing
 * listening, a socket answering garbage, a real HTTP server, a peer that never answers, and
 * replies that break the limits OpenSSH's client enforces (256 KiB, 2048 keys).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentClient } from '../../src/client/agent-client';
import { getKeys } from '../../src/client/get-keys';
import { AgentNotPresentError, AgentProtocolError, AgentTimeoutError } from '../../src/errors';
import { encodeResponseFrame } from '../../src/protocol/codec';
import { frame } from '../../src/protocol/frame';
import { removeDir, tempDir } from '../helpers/proc';
import { testKey } from '../helpers/keys';

let dir: string;
let counter = 0;
const servers: Server[] = [];

/** A Unix socket server in the test dir whose connections run `onConnection`. */
async function unixPeer(onConnection: (sock: Socket) => void): Promise<string> {
  const path = join(dir, `peer-${++counter}.sock`);
  const server = createServer(onConnection);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
}

/** A peer that answers the first request with `reply` (raw bytes), then leaves the socket open. */
function answering(reply: Buffer): Promise<string> {
  return unixPeer((sock) => {
    sock.on('error', () => undefined);
    sock.once('data', () => sock.write(reply));
  });
}

before(async () => {
  dir = await tempDir('tsagent-client-err-');
});
after(async () => {
  for (const s of servers) s.close();
  await removeDir(dir);
});

describe('getKeys when there is no agent', () => {
  it('SSH_AUTH_SOCK unset → []', async () => {
    const saved = process.env.SSH_AUTH_SOCK;
    delete process.env.SSH_AUTH_SOCK;
    try {
      assert.deepEqual(await getKeys(), []);
      assert.throws(() => new AgentClient(), AgentNotPresentError);
    } finally {
      if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved;
    }
  });

  it('nothing at the path (ENOENT) → []', async () => {
    const path = join(dir, 'absent.sock');
    assert.deepEqual(await getKeys({ socketPath: path }), []);
    await assert.rejects(
      new AgentClient({ socketPath: path }).list(),
      (e: unknown) => e instanceof AgentNotPresentError && /ENOENT/.test(e.message),
    );
  });

  it('nothing listening (ECONNREFUSED) → []', async () => {
    // connect(2) on a path that is not a listening socket is refused.
    const path = join(dir, 'not-listening');
    writeFileSync(path, '');
    assert.deepEqual(await getKeys({ socketPath: path }), []);
    await assert.rejects(
      new AgentClient({ socketPath: path }).list(),
      (e: unknown) => e instanceof AgentNotPresentError && /ECONNREFUSED/.test(e.message),
    );
  });
});

describe('getKeys when the peer is not an agent', () => {
  it('garbage bytes → AgentProtocolError', async () => {
    const path = await answering(Buffer.from('garbage, garbage, garbage\n'));
    await assert.rejects(getKeys({ socketPath: path, timeoutMs: 5000 }), AgentProtocolError);
  });

  it('a real HTTP server answering HTTP/1.1 400 → AgentProtocolError', async () => {
    const path = join(dir, `http-${++counter}.sock`);
    const http = createHttpServer((_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => http.listen(path, resolve));
    try {
      await assert.rejects(getKeys({ socketPath: path, timeoutMs: 5000 }), (e: unknown) => {
        assert.ok(e instanceof AgentProtocolError, String(e));
        assert.equal(e.code, 'PROTOCOL');
        return true;
      });
    } finally {
      http.closeAllConnections();
      http.close();
    }
  });

  it('a few bytes of a frame, then EOF → AgentProtocolError', async () => {
    const path = await unixPeer((sock) => sock.once('data', () => sock.end(Buffer.from([0, 0]))));
    await assert.rejects(getKeys({ socketPath: path, timeoutMs: 5000 }), AgentProtocolError);
  });

  it('a well-framed reply of an unknown type → AgentProtocolError', async () => {
    const path = await answering(frame(Buffer.from([99])));
    await assert.rejects(
      getKeys({ socketPath: path, timeoutMs: 5000 }),
      (e: unknown) => e instanceof AgentProtocolError && e.messageType === 99,
    );
  });

  it('SUCCESS where a key list is due → AgentProtocolError', async () => {
    const path = await answering(encodeResponseFrame({ type: 'success' }));
    await assert.rejects(getKeys({ socketPath: path, timeoutMs: 5000 }), AgentProtocolError);
  });

  it('a reply over 256 KiB is refused from its length alone', async () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(256 * 1024 + 1);
    const path = await answering(Buffer.concat([header, Buffer.from([12])]));
    await assert.rejects(
      getKeys({ socketPath: path, timeoutMs: 5000 }),
      (e: unknown) => e instanceof AgentProtocolError && /exceeds/.test(e.message),
    );
  });

  it('a list of 2049 keys is refused; 2048 are accepted (OpenSSH MAX_AGENT_IDENTITIES)', async () => {
    const blob = testKey('ed25519').blob;
    const list = (n: number): Buffer =>
      encodeResponseFrame({ type: 'identities', identities: Array.from({ length: n }, () => ({ blob, comment: '' })) });
    const over = await answering(list(2049));
    await assert.rejects(
      getKeys({ socketPath: over, timeoutMs: 5000 }),
      (e: unknown) => e instanceof AgentProtocolError && /too many identities/.test(e.message),
    );
    const max = await answering(list(2048));
    assert.equal((await getKeys({ socketPath: max, timeoutMs: 5000 })).length, 2048);
  });

  it('a key blob that does not parse → AgentProtocolError', async () => {
    const path = await answering(
      encodeResponseFrame({ type: 'identities', identities: [{ blob: Buffer.from([0, 0, 0, 9, 1]), comment: 'x' }] }),
    );
    await assert.rejects(getKeys({ socketPath: path, timeoutMs: 5000 }), AgentProtocolError);
  });

  it('a peer that accepts and never answers → AgentTimeoutError, bounded', async () => {
    const path = await unixPeer((sock) => sock.on('error', () => undefined));
    const started = Date.now();
    await assert.rejects(getKeys({ socketPath: path, timeoutMs: 300 }), AgentTimeoutError);
    assert.ok(Date.now() - started < 5000, 'the timeout bounds the wait');
  });

  it('after a protocol error the client reconnects for the next call', async () => {
    let first = true;
    const good = encodeResponseFrame({ type: 'identities', identities: [] });
    const path = await unixPeer((sock) => {
      sock.on('error', () => undefined);
      sock.on('data', () => {
        sock.write(first ? Buffer.from('nonsense') : good);
        first = false;
      });
    });
    const client = new AgentClient({ socketPath: path, timeoutMs: 5000 });
    await assert.rejects(client.list(), AgentProtocolError);
    assert.deepEqual(await client.list(), []);
    client.close();
  });
});
