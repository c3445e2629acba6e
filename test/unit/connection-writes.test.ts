/**
 * How a connection writes its replies (server/connection.ts): requests that arrive together
 * are answered with one write, as OpenSSH's agent answers its input buffer with one write
 * per poll round; a lone request is written as it is answered. Replies stay in order.
 */
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { Keyring } from '../../src/agent/keyring';
import { AgentSession } from '../../src/agent/session';
import { encodeRequestFrame } from '../../src/protocol/codec';
import { FrameDecoder } from '../../src/protocol/frame';
import { MSG } from '../../src/protocol/messages';
import { serveConnection } from '../../src/server/connection';
import { waitFor } from '../helpers/proc';

const LIST = encodeRequestFrame({ type: 'request-identities' });
const UNKNOWN = Buffer.from([0, 0, 0, 1, 200]);

/** A connection end that records each write call: the chunks it carried. */
function recordingStream(): { stream: Duplex; writes: Buffer[][] } {
  const writes: Buffer[][] = [];
  const stream = new Duplex({
    read() {
      /* requests are pushed by the test */
    },
    write(chunk: Buffer, _enc, cb) {
      writes.push([chunk]);
      cb();
    },
    writev(chunks, cb) {
      writes.push(chunks.map((c) => c.chunk as Buffer));
      cb();
    },
  });
  return { stream, writes };
}

function replyTypes(writes: readonly Buffer[][]): number[] {
  const dec = new FrameDecoder();
  return writes.flatMap((w) => w.flatMap((c) => dec.push(c))).map((b) => b[0]);
}

describe('connection writes', () => {
  it('requests that arrive together get their replies in one write, in order; a lone one its own', async () => {
    const { stream, writes } = recordingStream();
    const done = serveConnection(new Keyring(), stream, { session: new AgentSession({ connectionId: 1 }) });
    stream.push(Buffer.concat([LIST, LIST, LIST]));
    await waitFor(() => replyTypes(writes).length === 3, { timeoutMs: 5000 });
    assert.equal(writes.length, 1, 'one write for the three replies');
    stream.push(LIST);
    await waitFor(() => replyTypes(writes).length === 4, { timeoutMs: 5000 });
    assert.equal(writes.length, 2, 'a lone request: one more write');
    assert.equal(writes[1].length, 1);
    // One answered later (the dispatcher) keeps its place: the replies behind it wait.
    stream.push(Buffer.concat([LIST, UNKNOWN, LIST]));
    await waitFor(() => replyTypes(writes).length === 7, { timeoutMs: 5000 });
    assert.deepEqual(replyTypes(writes).slice(4), [MSG.IDENTITIES_ANSWER, MSG.FAILURE, MSG.IDENTITIES_ANSWER]);
    stream.destroy();
    await done;
  });
});
