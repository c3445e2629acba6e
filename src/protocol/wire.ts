/**
 * SSH wire primitives (RFC 4251 §5): byte, boolean, uint32, uint64, string, mpint.
 * Pure: no I/O. The reader is bounds-checked and throws ProtocolError on any short read;
 * strings it returns are views into the input (no copy), so callers that keep them past
 * the life of the input buffer must copy.
 */
import { ProtocolError } from '../errors';

/** OpenSSH refuses bignums over 16384 bits (sshbuf.h SSHBUF_MAX_BIGNUM), plus one sign byte. */
export const MAX_MPINT_BYTES = 16384 / 8 + 1;

export class SshReader {
  private pos = 0;

  /** @param messageType reported in errors, to say which message failed to decode */
  constructor(
    private readonly buf: Buffer,
    private readonly messageType?: number,
  ) {}

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  get atEnd(): boolean {
    return this.pos === this.buf.length;
  }

  fail(what: string): never {
    throw new ProtocolError(`${what} at offset ${this.pos}`, this.messageType, this.pos);
  }

  private need(n: number, what: string): void {
    if (this.buf.length - this.pos < n) this.fail(`truncated ${what}`);
  }

  byte(): number {
    this.need(1, 'byte');
    return this.buf[this.pos++];
  }

  /** RFC 4251 says any non-zero byte is true; OpenSSH writes 0/1. */
  bool(): boolean {
    return this.byte() !== 0;
  }

  uint32(): number {
    this.need(4, 'uint32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint64(): bigint {
    this.need(8, 'uint64');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A length-prefixed byte string, as a view into the input. */
  string(): Buffer {
    const len = this.uint32();
    this.need(len, 'string');
    const s = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  /** A string that must be text (algorithm names, comments). Decoded as UTF-8. */
  text(): string {
    return this.string().toString('utf8');
  }

  /**
   * Text that may not contain NUL, like OpenSSH's sshbuf_get_cstring (a key comment: one
   * with NUL could never be shown, or passed to askpass, whole).
   */
  cstring(): string {
    const raw = this.string();
    if (raw.includes(0)) this.fail('NUL inside a string');
    return raw.toString('utf8');
  }

  /**
   * An mpint, returned as its raw encoded bytes (so re-encoding is byte-identical).
   * Negative values are refused, like OpenSSH's sshbuf_get_bignum2_bytes_direct.
   */
  mpint(): Buffer {
    const raw = this.string();
    if (raw.length > 0 && (raw[0] & 0x80) !== 0) this.fail('negative mpint');
    if (raw.length > MAX_MPINT_BYTES) this.fail('mpint too large');
    return raw;
  }

  /** Everything not read yet, as a view. */
  rest(): Buffer {
    const r = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return r;
  }

  /** Decoding is all-or-nothing: bytes left over mean the message is not what it claims. */
  end(): void {
    if (!this.atEnd) this.fail(`${this.remaining} trailing bytes`);
  }
}

export class SshWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  get length(): number {
    return this.pos;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  bool(v: boolean): this {
    return this.byte(v ? 1 : 0);
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  uint64(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64BE(v, this.pos);
    this.pos += 8;
    return this;
  }

  string(v: Uint8Array | string): this {
    const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.uint32(bytes.length);
    return this.raw(bytes);
  }

  /** Writes mpint bytes exactly as given (see SshReader.mpint). */
  mpint(raw: Uint8Array): this {
    return this.string(raw);
  }

  raw(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /** The bytes written so far (a view; the writer must not be used afterwards). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/**
 * Minimal two's-complement mpint encoding of a non-negative big-endian magnitude, in a
 * buffer from `alloc` (keys/secret-bytes.ts passes its own for private values).
 */
export function mpintFromUnsigned(
  magnitude: Uint8Array,
  alloc: (length: number) => Buffer = (n) => Buffer.allocUnsafe(n),
): Buffer {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  const trimmed = magnitude.subarray(i);
  const pad = trimmed.length > 0 && (trimmed[0] & 0x80) !== 0 ? 1 : 0;
  const out = alloc(trimmed.length + pad);
  if (pad === 1) out[0] = 0;
  out.set(trimmed, pad);
  return out;
}

/** The magnitude of a non-negative mpint, leading zero bytes removed. */
export function mpintToUnsigned(raw: Uint8Array): Buffer {
  let i = 0;
  while (i < raw.length && raw[i] === 0) i++;
  return Buffer.from(raw.buffer, raw.byteOffset + i, raw.length - i);
}
