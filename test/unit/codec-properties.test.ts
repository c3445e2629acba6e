/**
 * Property tests of the pure wire layer (src/protocol): the message codec, the framing
 * decoder and the bounds-checked reader. No sockets, no processes: fast.
 *
 *  (a) decodeRequest / decodeResponse of ANY bytes returns a value or throws ProtocolError,
 *      never another error type (and a value that decodes re-encodes to something that
 *      decodes to the same value);
 *  (b) every Request / Response variant round-trips: decode(encode(x)) deep-equals x and
 *      encode(decode(encode(x))) is byte-identical;
 *  (c) FrameDecoder yields the same bodies for any split of a stream into chunks, and throws
 *      FrameError on zero and oversized lengths as soon as the length is known;
 *  (d) SshReader never reads past the end of its view: truncations of valid messages (views
 *      into the full buffer, so the missing bytes are physically there) throw ProtocolError.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FrameError, ProtocolError } from '../../src/errors';
import { privateKeyBodyFromKeyObject } from '../../src/keys/key-file';
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeRequestFrame,
  encodeResponse,
  encodeResponseFrame,
} from '../../src/protocol/codec';
import type { DestinationConstraint, DestinationHop } from '../../src/protocol/destination';
import type { Constraint } from '../../src/protocol/constraints';
import { FrameDecoder, MAX_MESSAGE_LENGTH, frame } from '../../src/protocol/frame';
import { MSG } from '../../src/protocol/messages';
import type { Request, Response } from '../../src/protocol/messages';
import { CERT_SUFFIX, ECDSA_TYPES } from '../../src/protocol/private-key';
import type { CertKeyType, PrivateKeyBody } from '../../src/protocol/private-key';
import { MAX_MPINT_BYTES, SshReader } from '../../src/protocol/wire';
import { testKey } from '../helpers/keys';

const RUNS = Number(process.env.FC_RUNS ?? 300);
const params = { numRuns: RUNS };

// ---- arbitraries ------------------------------------------------------------------------

const REQUEST_TYPES = new Set<number>([
  MSG.REMOVE_ALL_RSA_IDENTITIES,
  MSG.REQUEST_IDENTITIES,
  MSG.SIGN_REQUEST,
  MSG.ADD_IDENTITY,
  MSG.REMOVE_IDENTITY,
  MSG.REMOVE_ALL_IDENTITIES,
  MSG.LOCK,
  MSG.UNLOCK,
  MSG.ADD_ID_CONSTRAINED,
  MSG.ADD_SMARTCARD_KEY,
  MSG.REMOVE_SMARTCARD_KEY,
  MSG.ADD_SMARTCARD_KEY_CONSTRAINED,
  MSG.EXTENSION,
]);
const RESPONSE_TYPES = [
  MSG.FAILURE,
  MSG.SUCCESS,
  MSG.IDENTITIES_ANSWER,
  MSG.SIGN_RESPONSE,
  MSG.EXTENSION_FAILURE,
  MSG.EXTENSION_RESPONSE,
];

/** fc.record with ordinary objects (its default null prototype would fail deepEqual against decoded values). */
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(model, { noNullPrototype: true });
const bytes = (maxLength = 48): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
/** Comments, names: well-formed Unicode (no lone surrogates), so UTF-8 round-trips. */
const text = fc.string({ unit: 'binary', maxLength: 24 });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Raw mpint bytes as the reader accepts them: non-negative, not necessarily minimal. */
const mpint = fc
  .uint8Array({ maxLength: 40 })
  .map((u) => (u.length > 0 && (u[0] & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), u]) : Buffer.from(u)));

/** Real keys (the codec does not care, but real bodies have the real field sizes). */
const realBodies: PrivateKeyBody[] = [
  testKey('ed25519').body,
  testKey('ecdsa-256').body,
  testKey('ecdsa-384').body,
  testKey('ecdsa-521').body,
  testKey('rsa-768').body,
  privateKeyBodyFromKeyObject(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey),
];

const certType = (base: string): CertKeyType => `${base}${CERT_SUFFIX}` as CertKeyType;

/** Every PrivateKeyBody kind with arbitrary field contents: the codec checks shape only. */
const syntheticBody: fc.Arbitrary<PrivateKeyBody> = fc.oneof(
  rec({
    kind: fc.constant('ed25519' as const),
    type: fc.constant('ssh-ed25519' as const),
    publicKey: bytes(40),
    secret: bytes(72),
  }),
  rec({
    kind: fc.constant('rsa' as const),
    type: fc.constant('ssh-rsa' as const),
    n: mpint,
    e: mpint,
    d: mpint,
    iqmp: mpint,
    p: mpint,
    q: mpint,
  }),
  rec({ kind: fc.constant('ecdsa' as const), type: fc.constantFrom(...ECDSA_TYPES), curve: text, point: bytes(), d: mpint }),
  rec({
    kind: fc.constant('ed25519-cert' as const),
    type: fc.constant(certType('ssh-ed25519')),
    certificate: bytes(),
    publicKey: bytes(40),
    secret: bytes(72),
  }),
  rec({
    kind: fc.constant('rsa-cert' as const),
    type: fc.constant(certType('ssh-rsa')),
    certificate: bytes(),
    d: mpint,
    iqmp: mpint,
    p: mpint,
    q: mpint,
  }),
  rec({
    kind: fc.constant('ecdsa-cert' as const),
    type: fc.constantFrom(...ECDSA_TYPES.map(certType)),
    certificate: bytes(),
    d: mpint,
  }),
);

const keyBody: fc.Arbitrary<PrivateKeyBody> = fc.oneof(fc.constantFrom(...realBodies), syntheticBody);

/** Constraints: each kind at most once (duplicates are refused), in any order. */
const hop: fc.Arbitrary<DestinationHop> = rec({
  user: text.filter((s) => !s.includes('\0')),
  hostname: text.filter((s) => !s.includes('\0')),
  reserved: bytes(),
  keys: fc.array(rec({ blob: bytes(), isCa: fc.boolean() }), { maxLength: 3 }),
});
const destination: fc.Arbitrary<DestinationConstraint> = rec({ from: hop, to: hop, reserved: bytes() });

const constraints: fc.Arbitrary<Constraint[]> = fc
  .shuffledSubarray(['lifetime', 'confirm', 'restrict-destination', 'associated-certs', 'sk-provider'] as const)
  .chain((kinds) =>
    fc.tuple(
      ...kinds.map((k): fc.Arbitrary<Constraint> => {
        switch (k) {
          case 'lifetime':
            return u32.map((seconds) => ({ type: 'lifetime', seconds }));
          case 'confirm':
            return fc.constant({ type: 'confirm' });
          case 'restrict-destination':
            return fc.array(destination, { maxLength: 3 }).map((cs) => ({ type: 'restrict-destination', constraints: cs }));
          case 'associated-certs':
            return rec({ type: fc.constant('associated-certs' as const), certsOnly: fc.boolean(), certs: bytes() });
          case 'sk-provider':
            return text.map((provider) => ({ type: 'sk-provider', provider }));
        }
      }),
    ),
  );

const unknownRequestType = fc.integer({ min: 0, max: 255 }).filter((t) => !REQUEST_TYPES.has(t));

const request: fc.Arbitrary<Request> = fc.oneof(
  fc.constant<Request>({ type: 'request-identities' }),
  rec({ type: fc.constant('sign' as const), keyBlob: bytes(), data: bytes(), flags: u32 }),
  fc
    // A key comment never holds NUL: the decoder refuses it, as OpenSSH does (own test below).
    .tuple(
      keyBody,
      text.filter((s) => !s.includes('\0')),
      constraints,
      fc.boolean(),
    )
    .map(([key, comment, cs, constrained]): Request => ({
      type: 'add-identity',
      key,
      comment,
      constraints: cs,
      // The encoder sends 25 whenever there are constraints, so only then is the flag free.
      constrained: constrained || cs.length > 0,
    })),
  rec({ type: fc.constant('remove-identity' as const), keyBlob: bytes() }),
  rec({ type: fc.constant('remove-all-identities' as const), legacy: fc.boolean() }),
  rec({ type: fc.constant('lock' as const), passphrase: bytes() }),
  rec({ type: fc.constant('unlock' as const), passphrase: bytes() }),
  rec({ type: fc.constant('extension' as const), name: text, contents: bytes() }),
  rec({ type: fc.constant('unsupported' as const), messageType: unknownRequestType, body: bytes() }),
);

const response: fc.Arbitrary<Response> = fc.oneof(
  fc.constant<Response>({ type: 'failure' }),
  fc.constant<Response>({ type: 'success' }),
  rec({
    type: fc.constant('identities' as const),
    identities: fc.array(rec({ blob: bytes(), comment: text }), { maxLength: 6 }),
  }),
  rec({ type: fc.constant('sign-response' as const), signature: bytes(80) }),
  fc.constant<Response>({ type: 'extension-failure' }),
  rec({ type: fc.constant('extension-response' as const), contents: bytes() }),
);

/** One byte flipped, inserted or deleted, or the body truncated / extended. */
type Mutation =
  | { op: 'flip'; at: number; xor: number }
  | { op: 'insert'; at: number; byte: number }
  | { op: 'delete'; at: number }
  | { op: 'truncate'; at: number }
  | { op: 'extend'; tail: Buffer };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  rec({ op: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  rec({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  rec({ op: fc.constant('delete' as const), at: fc.nat() }),
  rec({ op: fc.constant('truncate' as const), at: fc.nat() }),
  rec({ op: fc.constant('extend' as const), tail: bytes(8) }),
);

function mutate(body: Buffer, m: Mutation): Buffer {
  const at = 'at' in m ? m.at % (body.length + 1) : 0;
  switch (m.op) {
    case 'flip': {
      if (body.length === 0) return body;
      const out = Buffer.from(body);
      out[at % body.length] ^= m.xor;
      return out;
    }
    case 'insert':
      return Buffer.concat([body.subarray(0, at), Buffer.from([m.byte]), body.subarray(at)]);
    case 'delete':
      return Buffer.concat([body.subarray(0, at), body.subarray(at + 1)]);
    case 'truncate':
      return body.subarray(0, at);
    case 'extend':
      return Buffer.concat([body, m.tail]);
  }
}

/** Runs `fn`; any throw that is not a ProtocolError fails the property with its class. */
function onlyProtocolErrors<T>(fn: () => T): T | ProtocolError {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    const e = err as Error;
    assert.fail(`threw ${e?.constructor?.name ?? typeof err} instead of ProtocolError: ${e?.message}`);
  }
}

/** True when a truncation of this request may legitimately decode (an opaque or optional tail). */
function hasOptionalTail(req: Request): boolean {
  return req.type === 'extension' || req.type === 'unsupported' || (req.type === 'add-identity' && req.constrained);
}

// ---- (a) any bytes ----------------------------------------------------------------------

describe('codec: decoding arbitrary bytes', () => {
  /** Arbitrary bodies, biased towards the message types that have parsers behind them. */
  const anyRequestBody = fc.oneof(
    bytes(256),
    fc.tuple(fc.constantFrom(...REQUEST_TYPES), bytes(256)).map(([t, rest]) => Buffer.concat([Buffer.from([t]), rest])),
    fc
      .tuple(request, fc.array(mutation, { minLength: 1, maxLength: 4 }))
      .map(([req, ms]) => ms.reduce(mutate, encodeRequest(req))),
  );
  const anyResponseBody = fc.oneof(
    bytes(256),
    fc.tuple(fc.constantFrom(...RESPONSE_TYPES), bytes(256)).map(([t, rest]) => Buffer.concat([Buffer.from([t]), rest])),
    fc
      .tuple(response, fc.array(mutation, { minLength: 1, maxLength: 4 }))
      .map(([resp, ms]) => ms.reduce(mutate, encodeResponse(resp))),
  );

  it('decodeRequest returns a Request or throws ProtocolError; a decoded value re-encodes to itself', () => {
    fc.assert(
      fc.property(anyRequestBody, (body) => {
        const out = onlyProtocolErrors(() => decodeRequest(body));
        if (out instanceof ProtocolError) return;
        const again = onlyProtocolErrors(() => decodeRequest(encodeRequest(out)));
        assert.deepEqual(again, out);
      }),
      { numRuns: RUNS * 4 },
    );
  });

  it('decodeResponse returns a Response or throws ProtocolError (with and without the identity cap)', () => {
    fc.assert(
      fc.property(anyResponseBody, fc.option(fc.nat(4)), (body, max) => {
        const out = onlyProtocolErrors(() => decodeResponse(body, max === null ? {} : { maxIdentities: max }));
        if (out instanceof ProtocolError) return;
        if (max !== null && out.type === 'identities') assert.ok(out.identities.length <= max);
        const again = onlyProtocolErrors(() => decodeResponse(encodeResponse(out)));
        assert.deepEqual(again, out);
      }),
      { numRuns: RUNS * 4 },
    );
  });

  it('an identity count larger than the message can hold is refused without allocating', () => {
    const body = Buffer.from([MSG.IDENTITIES_ANSWER, 0xff, 0xff, 0xff, 0xff]);
    assert.throws(() => decodeResponse(body), ProtocolError);
  });
});

// ---- (b) round trips --------------------------------------------------------------------

describe('codec: round trips', () => {
  it('decodeRequest(encodeRequest(x)) deep-equals x, and re-encoding is byte-identical', () => {
    fc.assert(
      fc.property(request, (req) => {
        const enc = encodeRequest(req);
        const dec = decodeRequest(enc);
        assert.deepEqual(dec, req);
        assert.ok(encodeRequest(dec).equals(enc), 're-encoding differs');
        assert.ok(encodeRequestFrame(req).equals(frame(enc)), 'framed encoding differs from frame(body)');
      }),
      params,
    );
  });

  it('decodeResponse(encodeResponse(x)) deep-equals x, and re-encoding is byte-identical', () => {
    fc.assert(
      fc.property(response, (resp) => {
        const enc = encodeResponse(resp);
        const dec = decodeResponse(enc);
        assert.deepEqual(dec, resp);
        assert.ok(encodeResponse(dec).equals(enc), 're-encoding differs');
        assert.ok(encodeResponseFrame(resp).equals(frame(enc)), 'framed encoding differs from frame(body)');
      }),
      params,
    );
  });

  it('every request variant and key kind is actually generated', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(request, (req) => {
        seen.add(req.type === 'add-identity' ? `add:${req.key.kind}` : req.type);
      }),
      { numRuns: 2000 },
    );
    for (const t of [
      'request-identities',
      'sign',
      'remove-identity',
      'remove-all-identities',
      'lock',
      'unlock',
      'extension',
      'unsupported',
    ]) {
      assert.ok(seen.has(t), t);
    }
    for (const k of ['ed25519', 'rsa', 'ecdsa', 'ed25519-cert', 'rsa-cert', 'ecdsa-cert']) assert.ok(seen.has(`add:${k}`), k);
  });
});

// ---- (c) framing ------------------------------------------------------------------------

/** Cuts `stream` at the given offsets (any order, duplicates give empty chunks). */
function split(stream: Buffer, cuts: number[]): Buffer[] {
  const points = cuts.map((c) => c % (stream.length + 1)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    chunks.push(stream.subarray(prev, p));
    prev = p;
  }
  chunks.push(stream.subarray(prev));
  return chunks;
}

const u32be = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

describe('FrameDecoder', () => {
  const bodies = fc.array(
    bytes(300).filter((b) => b.length > 0),
    { maxLength: 8 },
  );

  it('any split of a stream of frames into chunks yields the same bodies', () => {
    fc.assert(
      fc.property(bodies, fc.array(fc.nat(), { maxLength: 12 }), (bs, cuts) => {
        const stream = Buffer.concat(bs.map(frame));
        const dec = new FrameDecoder();
        const got: Buffer[] = [];
        for (const chunk of split(stream, cuts)) got.push(...dec.push(chunk));
        // Compared only after every push: the views handed out earlier must still be intact.
        assert.deepEqual(
          got.map((b) => b.toString('hex')),
          bs.map((b) => b.toString('hex')),
        );
        assert.equal(dec.buffered, 0);
      }),
      params,
    );
  });

  it('a partial trailing frame is buffered, not returned', () => {
    fc.assert(
      fc.property(
        bodies,
        bytes(300).filter((b) => b.length > 0),
        fc.nat(),
        (bs, last, cut) => {
          const whole = frame(last);
          const partial = whole.subarray(0, cut % whole.length);
          const dec = new FrameDecoder();
          const got = dec.push(Buffer.concat([...bs.map(frame), partial]));
          assert.equal(got.length, bs.length);
          assert.equal(dec.buffered, partial.length);
          assert.deepEqual(
            dec.push(whole.subarray(partial.length)).map((b) => b.toString('hex')),
            [last.toString('hex')],
          );
        },
      ),
      params,
    );
  });

  const badLength = fc.oneof(fc.constant(0), fc.integer({ min: MAX_MESSAGE_LENGTH + 1, max: 0xffffffff }));

  it('zero and > 256 KiB lengths throw FrameError as soon as the length is complete, whatever the split', () => {
    fc.assert(
      fc.property(bodies, badLength, bytes(16), fc.array(fc.nat(), { maxLength: 8 }), (bs, len, after, cuts) => {
        const good = Buffer.concat(bs.map(frame));
        const stream = Buffer.concat([good, u32be(len), after]);
        const headerEnd = good.length + 4;
        const dec = new FrameDecoder();
        let consumed = 0;
        let threw = false;
        for (const chunk of split(stream, cuts)) {
          const end = consumed + chunk.length;
          if (end < headerEnd) {
            dec.push(chunk); // must not throw before the bad length is complete
          } else {
            assert.throws(() => dec.push(chunk), FrameError);
            threw = true;
            break;
          }
          consumed = end;
        }
        assert.ok(threw, 'never threw');
      }),
      params,
    );
  });

  it('the limit is inclusive: exactly 256 KiB is a frame, one more byte is not', () => {
    const body = Buffer.alloc(MAX_MESSAGE_LENGTH, 7);
    const dec = new FrameDecoder();
    const chunks = split(frame(body), [1, 3, 5000, 200000]);
    const got = chunks.flatMap((c) => dec.push(c));
    assert.equal(got.length, 1);
    assert.ok(got[0].equals(body));
    assert.throws(() => new FrameDecoder().push(u32be(MAX_MESSAGE_LENGTH + 1)), FrameError);
  });

  it('honours a smaller maximum', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 128 }), (max, len) => {
        const dec = new FrameDecoder(max);
        const f = frame(Buffer.alloc(len, 1));
        if (len > max) assert.throws(() => dec.push(f), FrameError);
        else assert.equal(dec.push(f).length, 1);
      }),
      params,
    );
  });
});

// ---- (d) the reader stays inside its view -----------------------------------------------

describe('SshReader bounds', () => {
  it('every truncation of a valid request throws ProtocolError (or is itself a valid shorter message)', () => {
    fc.assert(
      fc.property(request, fc.nat(), (req, cutSeed) => {
        const full = encodeRequest(req);
        const k = cutSeed % full.length; // 0 .. length-1: a strict prefix
        // A view into the full buffer: the bytes past the cut are still there to be misread.
        const prefix = full.subarray(0, k);
        const out = onlyProtocolErrors(() => decodeRequest(prefix));
        if (out instanceof ProtocolError) return;
        assert.ok(hasOptionalTail(req), `truncation at ${k}/${full.length} of ${req.type} decoded`);
        assert.ok(encodeRequest(out).equals(prefix), 'decoded a prefix but not exactly its bytes');
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('every truncation of a request with no optional tail throws, at every cut', () => {
    fc.assert(
      fc.property(
        request.filter((r) => !hasOptionalTail(r)),
        (req) => {
          const full = encodeRequest(req);
          for (let k = 0; k < full.length; k++) {
            assert.throws(() => decodeRequest(full.subarray(0, k)), ProtocolError, `cut at ${k}/${full.length} of ${req.type}`);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('every truncation of a valid response throws ProtocolError (or is a valid shorter extension reply)', () => {
    fc.assert(
      fc.property(response, fc.nat(), (resp, cutSeed) => {
        const full = encodeResponse(resp);
        const prefix = full.subarray(0, cutSeed % full.length);
        const out = onlyProtocolErrors(() => decodeResponse(prefix));
        if (out instanceof ProtocolError) return;
        assert.equal(resp.type, 'extension-response');
        assert.ok(encodeResponse(out).equals(prefix));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  type Op = 'byte' | 'bool' | 'uint32' | 'uint64' | 'string' | 'text' | 'mpint' | 'rest' | 'end';
  const op = fc.constantFrom<Op>('byte', 'bool', 'uint32', 'uint64', 'string', 'text', 'mpint', 'rest', 'end');

  it('any sequence of reads on any bytes stays inside the view, or throws ProtocolError', () => {
    fc.assert(
      fc.property(bytes(64), fc.nat(8), fc.nat(8), fc.array(op, { maxLength: 12 }), (content, before, after, ops) => {
        // The view sits inside a larger buffer filled with 0xEE sentinels on both sides.
        const outer = Buffer.alloc(before + content.length + after, 0xee);
        content.copy(outer, before);
        const view = outer.subarray(before, before + content.length);
        const r = new SshReader(view);
        const lo = view.byteOffset;
        const hi = view.byteOffset + view.length;
        for (const o of ops) {
          const pos = r.offset;
          let v: unknown;
          try {
            v = r[o]();
          } catch (err) {
            assert.ok(err instanceof ProtocolError, `${o} threw ${(err as Error)?.constructor?.name}`);
            assert.ok(r.offset <= view.length, `${o} failed past the end`);
            continue;
          }
          assert.ok(r.offset >= pos && r.offset <= view.length, `${o} moved to ${r.offset} of ${view.length}`);
          assert.equal(r.remaining, view.length - r.offset);
          if (Buffer.isBuffer(v)) {
            assert.ok(v.byteOffset >= lo && v.byteOffset + v.length <= hi, `${o} returned bytes outside the view`);
            if (o === 'mpint') assert.ok(v.length <= MAX_MPINT_BYTES && (v.length === 0 || (v[0] & 0x80) === 0));
          }
        }
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('a string whose length runs past the view throws even when the buffer behind it is long enough', () => {
    fc.assert(
      fc.property(bytes(32), fc.integer({ min: 1, max: 64 }), (content, over) => {
        const claimed = content.length + over;
        const outer = Buffer.concat([u32be(claimed), content, Buffer.alloc(over + 64, 0xee)]);
        const view = outer.subarray(0, 4 + content.length);
        assert.throws(() => new SshReader(view).string(), ProtocolError);
        assert.throws(() => decodeRequest(Buffer.concat([Buffer.from([MSG.LOCK]), view])), ProtocolError);
      }),
      params,
    );
  });
});
