/**
 * One agent connection: frames in, dispatch, frames out. Requests on a connection are
 * worked on concurrently (a slow RSA signature or a confirm prompt does not hold up a list
 * queued behind it), but replies leave strictly in request order (RFC 9987 §3: one reply
 * per request, in order). Broken framing closes this connection only.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { answersSync } from '../agent/agent';
import type { Agent, RequestContext } from '../agent/agent';
import { dispatch } from '../agent/dispatcher';
import { ProtocolError } from '../errors';
import { decodeRequest, encodeResponseFrame } from '../protocol/codec';
import { FrameDecoder } from '../protocol/frame';
import { FAILURE, MSG } from '../protocol/messages';
import type { Identity, Request, Response } from '../protocol/messages';

/** Requests in flight per connection before we stop reading (backpressure on a flood). */
const MAX_IN_FLIGHT = 64;

export interface ServeOptions {
  readonly logger?: Logger;
  readonly context: RequestContext;
}

interface Slot {
  reply: Buffer | undefined;
}

/**
 * Encoded IDENTITIES_ANSWER frames by the identity array they encode. The keyring hands out
 * the same array until it changes, so a list costs one lookup instead of an encoding (for
 * 1000 keys, 300 µs) — and a changed keyring is a new array, a miss, never a stale reply.
 */
const identityFrames = new WeakMap<readonly Identity[], Buffer>();

function encodeReply(resp: Response): Buffer {
  if (resp.type !== 'identities') return encodeResponseFrame(resp);
  let frame = identityFrames.get(resp.identities);
  if (frame === undefined) {
    frame = encodeResponseFrame(resp);
    identityFrames.set(resp.identities, frame);
  }
  return frame;
}

/** Serves `agent` on `stream` until it closes. Resolves when the stream is done. */
export function serveConnection(agent: Agent, stream: Duplex, opts: ServeOptions): Promise<void> {
  const { logger, context } = opts;
  const sync = answersSync(agent);
  // ADD requests carry private keys: the decoder wipes whatever it copies (see frame.ts).
  const frames = new FrameDecoder(undefined, { wipeCopies: true });
  const queue: Slot[] = [];
  let closed = false;
  let ended = false;

  const flush = (): void => {
    while (queue.length > 0 && queue[0]!.reply !== undefined) {
      const slot = queue.shift()!;
      if (!closed) stream.write(slot.reply);
    }
    if (ended && queue.length === 0 && !closed) stream.end();
    else if (queue.length < MAX_IN_FLIGHT && stream.isPaused()) stream.resume();
  };

  const handle = (body: Buffer): void => {
    let req: Request | undefined;
    try {
      req = decodeRequest(body);
    } catch (err) {
      // Undecodable body inside intact framing: FAILURE, and the connection carries on.
      const detail = err instanceof ProtocolError ? err.message : 'decode error';
      logger?.debug({ conn: context.connectionId, messageType: body[0], reason: detail }, 'malformed request');
    }
    // Hot path: nothing is waiting on this connection and the agent can answer at once.
    if (req !== undefined && sync && queue.length === 0) {
      const resp = agent.answerSync(req, context);
      if (resp !== undefined) {
        if (!closed) stream.write(encodeReply(resp));
        return;
      }
    }
    const slot: Slot = { reply: undefined };
    queue.push(slot);
    // dispatch() never rejects: every failure is already a reply.
    const pending = req === undefined ? Promise.resolve(FAILURE) : dispatch(agent, req, context, logger);
    const settle = (resp: Response): void => {
      // An ADD body holds private key fields, a LOCK/UNLOCK body the passphrase; they have been
      // used by now, so wipe our copy.
      const t = body[0];
      if (t === MSG.ADD_IDENTITY || t === MSG.ADD_ID_CONSTRAINED || t === MSG.LOCK || t === MSG.UNLOCK) body.fill(0);
      slot.reply = encodeReply(resp);
      flush();
    };
    pending.then(settle, () => settle(FAILURE));
    if (queue.length >= MAX_IN_FLIGHT) stream.pause();
  };

  return new Promise<void>((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      if (closed) return;
      let bodies: Buffer[];
      try {
        bodies = frames.push(chunk);
      } catch (err) {
        logger?.debug({ conn: context.connectionId, reason: (err as Error).message }, 'broken framing, closing');
        closed = true;
        stream.destroy();
        return;
      }
      for (const body of bodies) handle(body);
    });
    stream.on('error', (err) => {
      logger?.debug({ conn: context.connectionId, reason: err.message }, 'connection error');
    });
    stream.on('close', () => {
      closed = true;
      resolve();
    });
    // A client that half-closes after its last request still gets its replies.
    stream.on('end', () => {
      ended = true;
      flush();
    });
  });
}
