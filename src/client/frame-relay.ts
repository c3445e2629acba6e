/**
 * The relay under agent forwarding (paramiko's AgentProxyThread): passes complete frames
 * between a client side (requests) and an agent side (replies), bounded, without decoding
 * the bodies — an extension or message type we do not know passes through unchanged.
 *
 * Bounds: frames over 256 KiB or of length zero (RFC 9987 §3, OpenSSH AGENT_MAX_LEN) tear
 * both sides down; at most `maxInFlight` requests are outstanding at the agent, and replies
 * the client has not taken past MAX_UNSENT_BYTES also stop the client side being read (the
 * same ordered-reply pipeline and bounds as the daemon's connections, src/stream/); a reply
 * the agent owes for longer than `replyTimeoutMs` tears both down; while the agent side does
 * not take requests, the client side is not read either.
 */
import type { Duplex } from 'node:stream';
import { AgentProtocolError, AgentTimeoutError, ConnectionClosedError } from '../errors';
import { FrameDecoder, frame } from '../protocol/frame';
import { MAX_IN_FLIGHT } from '../stream/limits';
import { OrderedReplies } from '../stream/ordered-replies';
import { DEFAULT_TIMEOUT_MS, asAgentProtocolError } from './agent-client';

/** Outstanding requests per relayed connection: the one pipeline limit (src/stream/limits.ts). */
export const DEFAULT_MAX_IN_FLIGHT = MAX_IN_FLIGHT;
/** After a graceful end, how long both sides get to flush before they are destroyed. */
const END_GRACE_MS = 2000;

export interface RelayOptions {
  /** Requests passed on and not yet answered before the client side stops being read (default MAX_IN_FLIGHT). */
  readonly maxInFlight?: number;
  /** Longest wait for the next reply while requests are outstanding, ms (default 30 s). */
  readonly replyTimeoutMs?: number;
}

export interface AgentRelay {
  /** Resolves once torn down: `undefined` when a side simply ended, else the reason. Never rejects. */
  readonly closed: Promise<Error | undefined>;
  /** Tears both sides down now. */
  close(reason?: Error): void;
}

/** A relay that never started (no agent to relay to). */
export function closedRelay(reason: Error): AgentRelay {
  return { closed: Promise.resolve(reason), close: () => undefined };
}

export function relayFrames(client: Duplex, agent: Duplex, options: RelayOptions = {}): AgentRelay {
  const replyTimeoutMs = options.replyTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const requests = new FrameDecoder();
  const answers = new FrameDecoder();
  let clientEnded = false;
  let agentBlocked = false;
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  let resolveClosed: (reason: Error | undefined) => void = () => undefined;
  const closed = new Promise<Error | undefined>((resolve) => {
    resolveClosed = resolve;
  });

  const finish = (reason: Error | undefined): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    replies.close();
    requests.clear();
    answers.clear();
    if (reason === undefined) {
      // Let replies already written reach the client, then make sure both are gone.
      if (!client.destroyed) client.end();
      if (!agent.destroyed) agent.end();
      setTimeout(() => {
        client.destroy();
        agent.destroy();
      }, END_GRACE_MS).unref();
    } else {
      client.destroy();
      agent.destroy();
    }
    resolveClosed(reason);
  };

  const armTimer = (): void => {
    clearTimeout(timer);
    timer = replies.idle
      ? undefined
      : setTimeout(() => finish(new AgentTimeoutError(`agent did not answer within ${replyTimeoutMs} ms`)), replyTimeoutMs);
  };

  /** Passes on held requests while the pipeline accepts and the agent takes them; then reads on or not. */
  const forward = (): void => {
    if (done) return;
    while (replies.accepting && !agentBlocked) {
      const body = requests.next();
      if (body === undefined) break;
      const first = replies.idle;
      replies.reserve();
      if (first) armTimer();
      if (!agent.write(frame(body))) agentBlocked = true;
    }
    if (clientEnded && replies.idle && requests.buffered === 0) {
      finish(undefined);
      return;
    }
    if (replies.accepting && !agentBlocked) client.resume();
    else client.pause();
  };
  const replies = new OrderedReplies(client, forward, { maxInFlight: options.maxInFlight });

  client.on('data', (chunk: Buffer) => {
    if (done) return;
    try {
      requests.append(chunk);
    } catch (err) {
      finish(asAgentProtocolError(err, 'client sent broken framing'));
      return;
    }
    forward();
  });
  agent.on('data', (chunk: Buffer) => {
    if (done) return;
    let bodies: Buffer[];
    try {
      bodies = answers.push(chunk);
    } catch (err) {
      finish(asAgentProtocolError(err, 'agent sent broken framing'));
      return;
    }
    for (const body of bodies) {
      // One reply per request (RFC 9987 §3): anything more is not an agent we can trust.
      const slot = replies.oldestOpen();
      if (slot === undefined) {
        finish(new AgentProtocolError('agent sent a reply to no request', body[0]));
        return;
      }
      replies.settle(slot, frame(body));
      if (done) return;
    }
    armTimer();
  });
  agent.on('drain', () => {
    agentBlocked = false;
    forward();
  });
  // A client that half-closes after its last request still gets its replies.
  client.on('end', () => {
    clientEnded = true;
    forward();
  });
  const agentGone = (): void =>
    finish(replies.idle ? undefined : new ConnectionClosedError('agent closed with requests unanswered'));
  agent.on('end', agentGone);
  const onError = (side: string) => (err: Error) =>
    finish(new ConnectionClosedError(`${side} failed: ${err.message}`, { cause: err }));
  client.on('error', onError('client side'));
  agent.on('error', onError('agent side'));
  client.on('close', () => finish(undefined));
  agent.on('close', agentGone);

  forward();
  return { closed, close: (reason?: Error) => finish(reason ?? new ConnectionClosedError('relay closed')) };
}
