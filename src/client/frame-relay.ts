/**
 * The relay under agent forwarding (paramiko's AgentProxyThread): passes complete frames
 * between a client side (requests) and an agent side (replies), bounded, without decoding
 * the bodies — an extension or message type we do not know passes through unchanged.
 *
 * Bounds: frames over 256 KiB or of length zero (RFC 9987 §3, OpenSSH AGENT_MAX_LEN) tear
 * both sides down; at most `maxInFlight` requests are outstanding at the agent, beyond that
 * the client side is no longer read; a reply the agent owes for longer than
 * `replyTimeoutMs` tears both down; write backpressure pauses the other side.
 */
import type { Duplex } from 'node:stream';
import { AgentProtocolError, AgentTimeoutError, ConnectionClosedError } from '../errors';
import { FrameDecoder, frame } from '../protocol/frame';
import { DEFAULT_TIMEOUT_MS, asAgentProtocolError } from './agent-client';

/** Outstanding requests per relayed connection (Go's client caps its pipeline at 32 too). */
export const DEFAULT_MAX_IN_FLIGHT = 32;
/** After a graceful end, how long both sides get to flush before they are destroyed. */
const END_GRACE_MS = 2000;

export interface RelayOptions {
  /** Requests passed on and not yet answered before the client side stops being read (default 32). */
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
  const maxInFlight = Math.max(1, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
  const replyTimeoutMs = options.replyTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const requests = new FrameDecoder();
  const replies = new FrameDecoder();
  /** Requests read from the client but held back by the in-flight bound. */
  const held: Buffer[] = [];
  let inFlight = 0;
  let clientEnded = false;
  let agentBlocked = false;
  let clientBlocked = false;
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
    timer = inFlight === 0 ? undefined : setTimeout(() => finish(new AgentTimeoutError(`agent did not answer within ${replyTimeoutMs} ms`)), replyTimeoutMs);
  };

  const flow = (): void => {
    if (done) return;
    if (held.length > 0 || agentBlocked) client.pause();
    else client.resume();
    if (clientBlocked) agent.pause();
    else agent.resume();
  };

  const forward = (): void => {
    while (held.length > 0 && inFlight < maxInFlight) {
      const body = held.shift()!;
      if (++inFlight === 1) armTimer();
      if (!agent.write(frame(body))) agentBlocked = true;
    }
    if (clientEnded && inFlight === 0 && held.length === 0) finish(undefined);
  };

  client.on('data', (chunk: Buffer) => {
    if (done) return;
    try {
      for (const body of requests.push(chunk)) held.push(body);
    } catch (err) {
      finish(asAgentProtocolError(err, 'client sent broken framing'));
      return;
    }
    forward();
    flow();
  });
  agent.on('data', (chunk: Buffer) => {
    if (done) return;
    let bodies: Buffer[];
    try {
      bodies = replies.push(chunk);
    } catch (err) {
      finish(asAgentProtocolError(err, 'agent sent broken framing'));
      return;
    }
    for (const body of bodies) {
      // One reply per request (RFC 9987 §3): anything more is not an agent we can trust.
      if (inFlight === 0) {
        finish(new AgentProtocolError('agent sent a reply to no request', body[0]));
        return;
      }
      inFlight--;
      if (!client.write(frame(body))) clientBlocked = true;
    }
    armTimer();
    forward();
    flow();
  });
  agent.on('drain', () => {
    agentBlocked = false;
    flow();
  });
  client.on('drain', () => {
    clientBlocked = false;
    flow();
  });
  // A client that half-closes after its last request still gets its replies.
  client.on('end', () => {
    clientEnded = true;
    forward();
  });
  agent.on('end', () => finish(inFlight > 0 ? new ConnectionClosedError('agent closed with requests unanswered') : undefined));
  const onError = (side: string) => (err: Error) => finish(new ConnectionClosedError(`${side} failed: ${err.message}`, { cause: err }));
  client.on('error', onError('client side'));
  agent.on('error', onError('agent side'));
  client.on('close', () => finish(undefined));
  agent.on('close', () => finish(inFlight > 0 ? new ConnectionClosedError('agent closed with requests unanswered') : undefined));

  flow();
  return { closed, close: (reason?: Error) => finish(reason ?? new ConnectionClosedError('relay closed')) };
}
