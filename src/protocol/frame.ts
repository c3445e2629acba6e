/**
 * Length-prefixed framing (RFC 9987 §3): uint32 length, then that many bytes.
 * Incremental and pure: feed it chunks, take out complete message bodies — all at once
 * (`push`) or one at a time (`append` + `next`), so a reader under back-pressure can stop
 * between two frames and leave the rest where it is.
 */
import { FrameError } from '../errors';

/** OpenSSH's AGENT_MAX_LEN (ssh-agent.c, authfd.c): larger messages close the connection. */
export const MAX_MESSAGE_LENGTH = 256 * 1024;

export interface FrameDecoderOptions {
  /**
   * Wipe what the decoder copies: the unfinished frame it joins with a new chunk (once
   * joined), the chunk so copied, and what is still unread when cleared. For a server, whose
   * requests may carry private keys; the chunks passed in must then not be used by the caller
   * afterwards, except through the bodies returned. Bodies already handed out are never wiped.
   */
  readonly wipeCopies?: boolean;
}

const EMPTY = Buffer.alloc(0);

export class FrameDecoder {
  /** Bytes received and not yet handed out; frames start at `start`. */
  private buf: Buffer = EMPTY;
  private start = 0;
  /** Offset up to which every frame header has been checked (past `start`). */
  private checked = 0;

  constructor(
    private readonly maxLength = MAX_MESSAGE_LENGTH,
    private readonly options: FrameDecoderOptions = {},
  ) {}

  /** Bytes received but not yet taken out as a body (complete frames included). */
  get buffered(): number {
    return this.buf.length - this.start;
  }

  /**
   * Adds a chunk. Every header it completes is checked at once, so broken framing throws
   * FrameError here (the stream cannot be resynchronised), before any body behind it is used.
   */
  append(chunk: Buffer): void {
    const rest = this.buf.length - this.start;
    if (rest === 0) {
      this.buf = chunk;
      this.checked = 0;
    } else {
      // Copy the remainder with the chunk, so a large old chunk is not kept alive by a few bytes.
      const unread = this.buf.subarray(this.start);
      this.buf = Buffer.concat([unread, chunk]);
      this.checked -= this.start;
      // Only the unread tail and the chunk: bodies handed out before `start` may still be in use.
      if (this.options.wipeCopies === true) {
        unread.fill(0);
        chunk.fill(0);
      }
    }
    this.start = 0;
    while (this.buf.length - this.checked >= 4) {
      const len = this.buf.readUInt32BE(this.checked);
      if (len === 0) throw new FrameError('zero-length message');
      if (len > this.maxLength) throw new FrameError(`message length ${len} exceeds ${this.maxLength}`);
      this.checked += 4 + len;
    }
  }

  /** Whether a complete message body is waiting (next() would return one). */
  get hasComplete(): boolean {
    return this.buf.length - this.start >= 4 && this.start + 4 + this.buf.readUInt32BE(this.start) <= this.buf.length;
  }

  /** The next complete message body (a view, not a copy), or undefined until more arrives. */
  next(): Buffer | undefined {
    if (this.buf.length - this.start < 4) return undefined;
    const len = this.buf.readUInt32BE(this.start);
    const end = this.start + 4 + len;
    if (end > this.buf.length) return undefined;
    const body = this.buf.subarray(this.start + 4, end);
    this.start = end;
    if (this.start === this.buf.length) this.clear();
    return body;
  }

  /** Adds a chunk and returns every complete message body it finishes. Throws like `append`. */
  push(chunk: Buffer): Buffer[] {
    this.append(chunk);
    const out: Buffer[] = [];
    for (let body = this.next(); body !== undefined; body = this.next()) out.push(body);
    return out;
  }

  /** Forgets everything buffered (a closed connection must not keep its last chunk alive). */
  clear(): void {
    if (this.options.wipeCopies === true) this.buf.subarray(this.start).fill(0);
    this.buf = EMPTY;
    this.start = 0;
    this.checked = 0;
  }
}

/** Prefixes a body with its uint32 length. */
export function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}
