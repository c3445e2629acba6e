/**
 * AgentClient pipelines at most MAX_IN_FLIGHT requests (src/stream/limits.ts), through a
 * real Unix socket: 200 concurrent calls against a peer that answers slowly never have more
 * than the limit outstanding at the peer, and all are answered, in order.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AgentClient } from '../../src/client/agent-client';
import { encodeResponseFrame } from '../../src/protocol/codec';
import { FrameDecoder } from '../../src/protocol/frame';
import { MAX_IN_FLIGHT } from '../../src/stream/limits';
import { removeDir, tempDir } from '../helpers/proc';

describe('AgentClient pipelining', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups) await c();
  });

  it(`keeps at most ${MAX_IN_FLIGHT} requests outstanding and answers every call`, async () => {
    const dir = await tempDir('tsagent-clientpipe-');
    const path = join(dir, 's');
    let outstanding = 0;
    let maxOutstanding = 0;
    let served = 0;
    const server = createServer((sock) => {
      const frames = new FrameDecoder();
      sock.on('data', (chunk: Buffer) => {
        const bodies = frames.push(chunk);
        outstanding += bodies.length;
        maxOutstanding = Math.max(maxOutstanding, outstanding);
        // Answer a little later, all at once: a slow agent lets the client's queue fill up.
        setTimeout(() => {
          for (const _ of bodies) {
            outstanding--;
            // Each reply names its position, so order can be checked: one identity per reply.
            sock.write(
              encodeResponseFrame({
                type: 'identities',
                identities: [{ blob: Buffer.from([served]), comment: String(served++) }],
              }),
            );
          }
        }, 5);
      });
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const client = new AgentClient({ socketPath: path });
    cleanups.push(async () => {
      client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeDir(dir);
    });
    const lists = await Promise.all(Array.from({ length: 200 }, () => client.list()));
    assert.deepEqual(
      lists.map((ids) => ids[0].comment),
      Array.from({ length: 200 }, (_, i) => String(i)),
      'every call got its own reply, in order',
    );
    assert.equal(maxOutstanding, MAX_IN_FLIGHT, 'the peer saw the limit reached, never exceeded');
  });
});
