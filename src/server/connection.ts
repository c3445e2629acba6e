/**
 * One agent connection: frames in, dispatch, frames out. Requests on a connection are
 * worked on concurrently (a slow RSA signature or a confirm prompt does not hold up a list
 * queued behind it), but replies leave strictly in request order (RFC 9987 §3: one reply
 * per request, in order) through the shared ordered-reply pipeline (src/stream/), which
 * also stops reading a client that does not take its replies. Broken framing closes this
 * connection only; a closed connection drops its unread frames and queued replies.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../log';
import { answersSync } from '../agent/agent';
import type { Agent } from '../agent/agent';
import type { AuditSink } from '../agent/ports';
import type { AgentSession } from '../agent/session';
import { dispatch } from '../agent/dispatcher';
import { ProtocolError } from '../errors';
import { decodeRequest, encodeResponseFrame } from '../protocol/codec';
import { FrameDecoder, MAX_MESSAGE_LENGTH } from '../protocol/frame';
import { FAILURE, MSG } from '../protocol/messages';
import type { Identity, Request, Response } from '../protocol/messages';
import { OrderedReplies } from '../stream/ordered-replies';
import type { ReplySlot } from '../stream/ordered-replies';

/** Request types whose body carries a secret (private key fields, a smartcard PIN, a lock passphrase). */
const SECRET_BODIES: ReadonlySet<number> = new Set([
  MSG.ADD_IDENTITY,
  MSG.ADD_ID_CONSTRAINED,
  MSG.ADD_SMARTCARD_KEY,
  MSG.ADD_SMARTCARD_KEY_CONSTRAINED,
  MSG.REMOVE_SMARTCARD_KEY,
  MSG.LOCK,
  MSG.UNLOCK,
]);

export interface ServeOptions {
  readonly logger?: Logger;
  /** The connection's session (agent/session.ts), made when it was accepted. */
  readonly session: AgentSession;
  /** The audit log: its sign records are written before the reply leaves (POLICY.md §6). */
  readonly audit?: Pick<AuditSink, 'flush' | 'afterWrite'>;
}

/**
 * Encoded IDENTITIES_ANSWER frames by the identity array they encode. The keyring hands out
 * the same array until it changes, so a list costs one lookup instead of an encoding (for
 * 1000 keys, 300 µs) — and a changed keyring is a new array, a miss, never a stale reply.
 */
const identityFrames = new WeakMap<readonly Identity[], Buffer>();

/** FAILURE as a frame: the answer to a reply that cannot be framed. */
const FAILURE_FRAME = encodeResponseFrame(FAILURE);

/**
 * A reply as a frame. One over the 256 KiB frame limit (a list of ~4,000 keys) would make
 * every client drop the connection (OpenSSH authfd.c refuses it), so it becomes FAILURE:
 * `ssh-add -l` then says "agent refused operation" and the connection stays usable.
 */
function encodeReply(resp: Response): Buffer {
  if (resp.type !== 'identities') return fitted(encodeResponseFrame(resp));
  let frame = identityFrames.get(resp.identities);
  if (frame === undefined) {
    frame = fitted(encodeResponseFrame(resp));
    identityFrames.set(resp.identities, frame);
  }
  return frame;
}

function fitted(frame: Buffer): Buffer {
  return frame.length - 4 > MAX_MESSAGE_LENGTH ? FAILURE_FRAME : frame;
}

/** Serves `agent` on `stream` until it closes. Resolves when the stream is done. */
export function serveConnection(agent: Agent, stream: Duplex, opts: ServeOptions): Promise<void> {
  const { logger, session: context, audit } = opts;
  const sync = answersSync(agent);
  // ADD requests carry private keys: the decoder wipes whatever it copies (see frame.ts).
  const frames = new FrameDecoder(undefined, { wipeCopies: true });
  let closed = false;
  let ended = false;

  /**
   * Works through the frames already received while the pipeline accepts more, then reads
   * on or stops reading: a client that does not take its replies is no longer read
   * (back-pressure), and is read again once they drain.
   */
  const pump = (): void => {
    if (closed) return;
    let more = true;
    let corked = false;
    try {
      while (replies.accepting) {
        const body = frames.next();
        if (body === undefined) {
          more = false;
          break;
        }
        // Requests that came together (a bind and a list in one write) get the replies made
        // now in one write, as OpenSSH's agent answers its whole input buffer with one write
        // per poll round. A lone request is not corked. Each pump uncorks what it corked
        // (pump re-enters through replies.settle, balanced the same way).
        if (!corked && frames.hasComplete) {
          stream.cork();
          corked = true;
        }
        handle(body);
      }
    } finally {
      if (corked) stream.uncork();
    }
    if (ended) {
      // Half-closed: answer what was asked, then close our side (a partial frame is dropped).
      // With every reply already handed to the kernel, close at once: end() would first shut
      // our side down (one more system call and poll round per connection) for a peer that
      // has sent its last byte.
      if (!more && replies.idle && !stream.writableEnded) {
        if (stream.writableLength === 0) stream.destroy();
        else stream.end();
      }
    } else if (replies.accepting) {
      if (stream.isPaused()) stream.resume();
    } else if (!stream.isPaused()) {
      stream.pause();
    }
  };
  const replies = new OrderedReplies(stream, pump);

  /**
   * A sign decision is on disk before its reply leaves (POLICY.md §6): the reply waits in
   * `slot` for the audit batch it belongs to, and goes at once when nothing is queued (the
   * log is off, or the decision was not recorded).
   */
  const settleAfterAudit = (slot: ReplySlot, frame: Buffer): void => {
    if (audit?.afterWrite?.(() => replies.settle(slot, frame)) === true) return;
    audit?.flush();
    replies.settle(slot, frame);
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
    if (req !== undefined && sync && replies.idle) {
      const resp = agent.answerSync(req, context);
      if (resp !== undefined) {
        if (SECRET_BODIES.has(body[0])) body.fill(0);
        if (req.type === 'sign' && audit !== undefined) settleAfterAudit(replies.reserve(), encodeReply(resp));
        else replies.send(encodeReply(resp));
        return;
      }
    }
    const slot = replies.reserve();
    // dispatch() never rejects: every failure is already a reply.
    const pending = req === undefined ? Promise.resolve(FAILURE) : dispatch(agent, req, context, logger);
    const settle = (resp: Response): void => {
      // ADD bodies hold private key fields or a PIN, LOCK/UNLOCK the passphrase; they have
      // been used by now, so wipe them.
      if (SECRET_BODIES.has(body[0])) body.fill(0);
      if (req?.type === 'sign' && audit !== undefined) settleAfterAudit(slot, encodeReply(resp));
      else replies.settle(slot, encodeReply(resp));
    };
    pending.then(settle, () => settle(FAILURE));
  };

  return new Promise<void>((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      if (closed) return;
      try {
        frames.append(chunk);
      } catch (err) {
        logger?.debug({ conn: context.connectionId, reason: (err as Error).message }, 'broken framing, closing');
        stream.destroy();
        release();
        return;
      }
      pump();
    });
    stream.on('error', (err) => {
      logger?.debug({ conn: context.connectionId, reason: err.message }, 'connection error');
    });
    // Whatever the connection still holds (unread frames, queued replies) goes with it.
    const release = (): void => {
      closed = true;
      frames.clear();
      replies.close();
    };
    stream.on('close', () => {
      release();
      resolve();
    });
    // A client that half-closes after its last request still gets its replies (the server
    // allows half-open sockets). An EOF cannot tell that client from one that is gone (an
    // `ssh` killed while a prompt shows), so questions still open for the user are withdrawn
    // now, as for a closed connection; everything else asked is answered, then our side closes.
    stream.on('end', () => {
      ended = true;
      if (!replies.idle) context.close();
      pump();
    });
  });
}
