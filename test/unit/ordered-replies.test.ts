/**
 * The ordered-reply pipeline (src/stream/ordered-replies.ts) and the bounded prompt queue
 * (src/agent/confirm.ts limitPrompts), in process: replies leave in request order whatever
 * order they finish in; reading stops at the in-flight cap and past the unsent-bytes bound
 * and starts again on drain; prompts are one per key, capped, queued in order, bounded.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { MAX_PROMPT_BYTES, confirmPrompt, limitPrompts, truncateUtf8 } from '../../src/agent/confirm';
import type { ConfirmRequest } from '../../src/agent/confirm';
import { OrderedReplies } from '../../src/stream/ordered-replies';

/** A sink that holds every write until `take()` (a peer that reads only when told). */
class SlowPeer extends Writable {
  readonly got: string[] = [];
  private held: (() => void)[] = [];
  constructor(highWaterMark: number) {
    super({ highWaterMark });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.got.push(chunk.toString());
    this.held.push(cb);
  }
  take(): void {
    for (const cb of this.held.splice(0)) cb();
  }
}

describe('OrderedReplies', () => {
  it('sends replies in request order, whatever order they are settled in', () => {
    const peer = new SlowPeer(1 << 20);
    peer._write = (chunk: Buffer, _enc, cb) => {
      peer.got.push(chunk.toString());
      cb();
    };
    let ready = 0;
    const r = new OrderedReplies(peer, () => ready++, { maxInFlight: 8 });
    const slots = [r.reserve(), r.reserve(), r.reserve()];
    r.settle(slots[2], Buffer.from('c'));
    r.settle(slots[1], Buffer.from('b'));
    assert.deepEqual(peer.got, [], 'nothing leaves before the first reply');
    assert.equal(ready, 0);
    r.settle(slots[0], Buffer.from('a'));
    assert.deepEqual(peer.got.join(''), 'abc');
    assert.ok(r.idle);
    assert.equal(ready, 1);
  });

  it('stops accepting at the in-flight cap and past the unsent-bytes bound; drain reopens', async () => {
    const peer = new SlowPeer(4);
    let ready = 0;
    const r = new OrderedReplies(peer, () => ready++, { maxInFlight: 2, maxUnsentBytes: 10 });
    const a = r.reserve();
    assert.ok(r.accepting);
    const b = r.reserve();
    assert.ok(!r.accepting, 'two in flight: the cap');
    r.settle(a, Buffer.alloc(6));
    assert.ok(r.accepting, 'one slot free, 6 bytes unsent');
    r.settle(b, Buffer.alloc(6));
    assert.ok(!r.accepting, '12 bytes unsent > 10: stop reading');
    const before = ready;
    peer.take();
    await new Promise((resolve) => setImmediate(resolve));
    peer.take();
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(r.accepting, 'drained');
    assert.ok(ready > before, 'onReady ran on drain');
  });

  it('close drops queued replies and writes nothing more', () => {
    const peer = new SlowPeer(1 << 20);
    const r = new OrderedReplies(peer, () => undefined);
    const a = r.reserve();
    const b = r.reserve();
    r.settle(b, Buffer.from('b'));
    r.close();
    r.settle(a, Buffer.from('a'));
    assert.deepEqual(peer.got, []);
    assert.equal(r.inFlight, 0);
    assert.ok(!r.accepting);
  });
});

describe('limitPrompts', () => {
  const req = (key: string): ConfirmRequest => ({ comment: key, fingerprint: `SHA256:${key}` });

  it('one prompt per key, a global cap, the rest in order, refused beyond the queue bound', async () => {
    const open: { key: string; answer: (ok: boolean) => void }[] = [];
    const started: string[] = [];
    const confirm = limitPrompts(
      (r) =>
        new Promise<boolean>((resolve) => {
          started.push(r.comment);
          open.push({ key: r.comment, answer: resolve });
        }),
      { maxConcurrent: 2, maxWaiting: 2 },
    );
    const results = ['a', 'a', 'b', 'c'].map((k) => confirm(req(k)));
    const refused = confirm(req('d'));
    assert.equal(await refused, false, 'a third waiter is refused at once');
    assert.deepEqual(started, ['a', 'b'], 'second a waits for the first; c waits for the cap');
    open.shift()!.answer(true); // first a
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, ['a', 'b', 'a'], 'the waiting a goes first, in arrival order');
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      const next = open.shift();
      if (next === undefined) break;
      next.answer(false);
    }
    assert.deepEqual(await Promise.all(results), [true, false, false, false]);
    assert.deepEqual(started, ['a', 'b', 'a', 'c']);
  });

  it('cuts the prompt at 1023 bytes on a character boundary', () => {
    assert.equal(truncateUtf8('abc', 2), 'ab');
    assert.equal(truncateUtf8('aé', 2), 'a', 'never half a character');
    const p = confirmPrompt({ comment: '€'.repeat(600), fingerprint: 'SHA256:x' });
    assert.ok(Buffer.byteLength(p) <= MAX_PROMPT_BYTES && Buffer.byteLength(p) > MAX_PROMPT_BYTES - 3);
    assert.equal(
      confirmPrompt({ comment: 'short', fingerprint: 'SHA256:x' }),
      'Allow use of key short?\nKey fingerprint SHA256:x.',
    );
  });
});
