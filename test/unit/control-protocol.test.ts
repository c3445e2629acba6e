/**
 * The control socket's line protocol (protocol/control.ts): lines survive any chunking,
 * over-long lines are refused, and decoding never throws on arbitrary bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LineSplitter, decodeControlRequest, decodeControlResponse, encodeControlLine } from '../../src/protocol/control';

test('requests round-trip through any chunking', () => {
  fc.assert(
    fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(40), { maxLength: 20 }), (names, cuts) => {
      const reqs = names.map((n, i) => ({ v: 1, id: i, command: 'status', args: { name: n } }));
      const bytes = Buffer.concat(reqs.map((r) => encodeControlLine(r)));
      const split = new LineSplitter();
      const lines: Buffer[] = [];
      let at = 0;
      for (const c of cuts) {
        const end = Math.min(bytes.length, at + c);
        lines.push(...split.push(bytes.subarray(at, end))!);
        at = end;
      }
      lines.push(...split.push(bytes.subarray(at))!);
      assert.deepEqual(
        lines.map((l) => decodeControlRequest(l)),
        reqs,
      );
    }),
  );
});

test('an over-long line is refused; junk decodes to a message, never a throw', () => {
  const split = new LineSplitter(16);
  assert.equal(split.push(Buffer.alloc(17, 0x61)), undefined);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      const buf = Buffer.from(b);
      const r = decodeControlRequest(buf);
      assert.ok(typeof r === 'string' || typeof r.command === 'string');
      decodeControlResponse(buf);
    }),
  );
  assert.equal(decodeControlRequest(Buffer.from('{"v":1,"id":1,"command":"Rm -rf"}')), 'command must be a short lowercase word');
  assert.equal(decodeControlRequest(Buffer.from('{"v":2,"id":1,"command":"status"}')), 'unsupported protocol version 2');
  assert.deepEqual(decodeControlResponse(Buffer.from('{"v":1,"id":3,"ok":false,"error":{"code":"CONFIG","message":"m"}}')), {
    v: 1,
    id: 3,
    ok: false,
    error: { code: 'CONFIG', message: 'm' },
  });
});
