/**
 * Length-prefixed framing (RFC 9987 §3): uint32 length, then that many bytes.
 * Incremental and pure: feed it chunks, take out complete message bodies.
 */
import { FrameError } from '../errors';

/** OpenSSH's AGENT_MAX_LEN (ssh-agent.c, authfd.c): larger messages close the connection. */
export const MAX_MESSAGE_LENGTH = 256 * 1024;

export interface FrameDecoderOptions {
  /**
   * Wipe what the decoder copies: its own buffer of a partial frame once joined, and the
   * bytes of a chunk it copied out (the start of a frame the chunk did not finish). For a
   * server, whose requests may carry private keys; the chunks passed in must then not be
   * used by the caller afterwards, except through the bodies returned.
   */
  readonly wipeCopies?: boolean;
}

export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly maxLength = MAX_MESSAGE_LENGTH,
    private readonly options: FrameDecoderOptions = {},
  ) {}

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.pending.length;
  }

  /**
   * Adds a chunk and returns every complete message body it finishes (views, not copies).
   * Throws FrameError on a zero or oversized length: the stream cannot be resynchronised.
   */
  push(chunk: Buffer): Buffer[] {
    const wipe = this.options.wipeCopies === true;
    let buf = chunk;
    if (this.pending.length !== 0) {
      buf = Buffer.concat([this.pending, chunk]);
      if (wipe) {
        this.pending.fill(0);
        chunk.fill(0);
      }
    }
    const out: Buffer[] = [];
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (len === 0) throw new FrameError('zero-length message');
      if (len > this.maxLength) throw new FrameError(`message length ${len} exceeds ${this.maxLength}`);
      if (buf.length < 4 + len) break;
      out.push(buf.subarray(4, 4 + len));
      buf = buf.subarray(4 + len);
    }
    // Copy a small remainder so a large chunk is not kept alive by a few trailing bytes.
    this.pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
    if (wipe) buf.fill(0);
    return out;
  }
}

/** Prefixes a body with its uint32 length. */
export function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}
