import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameError, ProtocolError } from '../../src/errors';
import { FrameDecoder, MAX_MESSAGE_LENGTH, frame } from '../../src/protocol/frame';
import { SshReader, SshWriter, mpintFromUnsigned, mpintToUnsigned } from '../../src/protocol/wire';

describe('SshReader / SshWriter', () => {
  it('round-trips every primitive', () => {
    const buf = new SshWriter(4)
      .byte(7)
      .bool(true)
      .uint32(0xdeadbeef)
      .uint64(0x0102030405060708n)
      .string('héllo')
      .string(Buffer.from([0, 1, 2]))
      .mpint(Buffer.from([0x00, 0x80]))
      .finish();
    const r = new SshReader(buf);
    assert.equal(r.byte(), 7);
    assert.equal(r.bool(), true);
    assert.equal(r.uint32(), 0xdeadbeef);
    assert.equal(r.uint64(), 0x0102030405060708n);
    assert.equal(r.text(), 'héllo');
    assert.deepEqual([...r.string()], [0, 1, 2]);
    assert.deepEqual([...r.mpint()], [0, 0x80]);
    r.end();
  });

  it('throws ProtocolError on every short read, with the offset', () => {
    assert.throws(() => new SshReader(Buffer.alloc(0)).byte(), ProtocolError);
    assert.throws(() => new SshReader(Buffer.alloc(3)).uint32(), ProtocolError);
    assert.throws(() => new SshReader(Buffer.alloc(7)).uint64(), ProtocolError);
    // A string claiming more bytes than there are.
    const err = assert.throws(() => new SshReader(Buffer.from([0, 0, 0, 5, 1, 2])).string(), ProtocolError);
    void err;
    const r = new SshReader(Buffer.from([0, 0, 0, 1, 9, 9]));
    r.string();
    assert.throws(
      () => r.end(),
      (e: unknown) => e instanceof ProtocolError && e.offset === 5,
    );
  });

  it('refuses negative and oversized mpints', () => {
    assert.throws(() => new SshReader(Buffer.from([0, 0, 0, 1, 0x80])).mpint(), ProtocolError);
    const big = new SshWriter().string(Buffer.alloc(2050, 1)).finish();
    assert.throws(() => new SshReader(big).mpint(), ProtocolError);
  });

  it('encodes mpints minimally and decodes their magnitude', () => {
    assert.deepEqual([...mpintFromUnsigned(Buffer.from([0, 0, 0x7f]))], [0x7f]);
    assert.deepEqual([...mpintFromUnsigned(Buffer.from([0x80]))], [0, 0x80]);
    assert.deepEqual([...mpintFromUnsigned(Buffer.alloc(3))], []);
    assert.deepEqual([...mpintToUnsigned(Buffer.from([0, 0x80]))], [0x80]);
  });

  it('grows its buffer as needed', () => {
    const w = new SshWriter(1);
    for (let i = 0; i < 1000; i++) w.uint32(i);
    const r = new SshReader(w.finish());
    for (let i = 0; i < 1000; i++) assert.equal(r.uint32(), i);
  });
});

describe('FrameDecoder', () => {
  it('splits a stream into bodies however it is chunked', () => {
    const stream = Buffer.concat([frame(Buffer.from([11])), frame(Buffer.from([13, 1, 2, 3])), frame(Buffer.from([22]))]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const out = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      assert.deepEqual(
        out.map((b) => [...b]),
        [[11], [13, 1, 2, 3], [22]],
      );
      assert.equal(d.buffered, 0);
    }
  });

  it('byte by byte', () => {
    const stream = frame(Buffer.from('hello world'));
    const d = new FrameDecoder();
    const out: Buffer[] = [];
    for (const b of stream) out.push(...d.push(Buffer.from([b])));
    assert.equal(out.length, 1);
    assert.equal(out[0].toString(), 'hello world');
  });

  it('refuses zero-length and oversized frames', () => {
    assert.throws(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 0])), FrameError);
    const over = Buffer.alloc(4);
    over.writeUInt32BE(MAX_MESSAGE_LENGTH + 1);
    assert.throws(() => new FrameDecoder().push(over), FrameError);
    const max = Buffer.alloc(4);
    max.writeUInt32BE(MAX_MESSAGE_LENGTH);
    assert.deepEqual(new FrameDecoder().push(max), [], 'exactly 256 KiB is allowed (waits for the body)');
  });

  it('hasComplete says whether next() has a body to give', () => {
    const d = new FrameDecoder();
    assert.equal(d.hasComplete, false);
    const two = Buffer.concat([frame(Buffer.from([11])), frame(Buffer.from([13, 1]))]);
    d.append(two.subarray(0, 7));
    assert.equal(d.hasComplete, true, 'the first frame is whole');
    assert.deepEqual([...d.next()!], [11]);
    assert.equal(d.hasComplete, false, 'the second is cut short');
    d.append(two.subarray(7));
    assert.equal(d.hasComplete, true);
    assert.deepEqual([...d.next()!], [13, 1]);
    assert.equal(d.hasComplete, false);
  });
});
