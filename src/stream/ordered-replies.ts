/**
 * The ordered-reply pipeline of one connection (RFC 9987 §3: one reply per request, in
 * request order), with its two bounds: at most MAX_IN_FLIGHT requests outstanding and, past
 * MAX_UNSENT_BYTES of replies the peer has not taken, no more reading. Requests may finish
 * out of order (a prompt, a thread-pool signature); their replies wait in their slot until
 * every earlier one has left. Used by the daemon's connections and the forwarding relay.
 */
import type { Writable } from 'node:stream';
import { MAX_IN_FLIGHT, MAX_UNSENT_BYTES } from './limits';

/** One outstanding request's place in line; filled once with its reply frame. */
export interface ReplySlot {
  reply: Buffer | undefined;
}

export interface ReplyLimits {
  readonly maxInFlight?: number;
  readonly maxUnsentBytes?: number;
}

export class OrderedReplies {
  private slots: ReplySlot[] = [];
  private closed = false;
  private readonly maxInFlight: number;
  private readonly maxUnsentBytes: number;

  /**
   * `out` is where replies go. `onReady` runs whenever the pipeline may have become
   * `accepting` again (a slot left, or `out` drained): the owner reads more then.
   */
  constructor(
    private readonly out: Writable,
    private readonly onReady: () => void,
    limits: ReplyLimits = {},
  ) {
    this.maxInFlight = Math.max(1, limits.maxInFlight ?? MAX_IN_FLIGHT);
    // 'drain' only follows a write() that returned false (past the stream's highWaterMark):
    // a bound below that could stop reading with no drain to come.
    this.maxUnsentBytes = Math.max(limits.maxUnsentBytes ?? MAX_UNSENT_BYTES, out.writableHighWaterMark);
    out.on('drain', this.drained);
  }

  /** Requests waiting for their reply to leave. */
  get inFlight(): number {
    return this.slots.length;
  }

  /** Nothing outstanding: a reply made now may be written at once (the hot path). */
  get idle(): boolean {
    return this.slots.length === 0;
  }

  /** May the owner read (and start) another request? */
  get accepting(): boolean {
    return !this.closed && this.slots.length < this.maxInFlight && this.out.writableLength <= this.maxUnsentBytes;
  }

  /** Writes a reply for a request that had no slot; only while `idle`. */
  send(reply: Buffer): void {
    if (!this.closed) this.out.write(reply);
  }

  /** Takes the next place in line for a request about to be worked on. */
  reserve(): ReplySlot {
    const slot: ReplySlot = { reply: undefined };
    this.slots.push(slot);
    return slot;
  }

  /** The oldest slot still waiting for its reply (a relay's replies arrive in order). */
  oldestOpen(): ReplySlot | undefined {
    return this.slots.find((s) => s.reply === undefined);
  }

  /** Gives `slot` its reply and sends every reply now at the head of the line. */
  settle(slot: ReplySlot, reply: Buffer): void {
    if (this.closed) return;
    slot.reply = reply;
    let n = 0;
    while (n < this.slots.length && this.slots[n].reply !== undefined) this.out.write(this.slots[n++].reply);
    if (n === 0) return;
    this.slots = this.slots.slice(n);
    this.onReady();
  }

  /** Drops every queued reply (the connection is gone) and stops listening for drain. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.slots) s.reply = undefined;
    this.slots = [];
    this.out.off('drain', this.drained);
  }

  private readonly drained = (): void => {
    if (!this.closed) this.onReady();
  };
}
