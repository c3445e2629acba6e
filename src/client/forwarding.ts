/**
 * Agent forwarding, client side (`ssh -A`): the remote server opens an
 * `auth-agent@openssh.com` channel (OpenSSH PROTOCOL §2.1 / PROTOCOL.agent) and we relay it
 * to the local agent. paramiko: AgentRequestHandler + AgentClientProxy + AgentRemoteProxy.
 */
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { AgentNotPresentError } from '../errors';
import { closedRelay, relayFrames } from './frame-relay';
import type { AgentRelay, RelayOptions } from './frame-relay';

export interface ForwardAgentOptions extends RelayOptions {
  /** The local agent's socket (or Windows pipe); default `$SSH_AUTH_SOCK`. */
  readonly socketPath?: string;
}

/**
 * Relays `channel` (any Duplex carrying the agent protocol, e.g. the channel an ssh2
 * `Client` accepts for `auth-agent@openssh.com`) to the local agent, frame by frame and
 * bounded (see relayFrames). When either side ends or misbehaves both are torn down.
 * No agent configured or reachable: the channel is destroyed and `closed` resolves with
 * AgentNotPresentError.
 *
 * With ssh2's Client: give it `agent: <an OpenSSHAgent whose getStream(cb) hands ssh2 one end
 * of a duplex pair>` and pass the other end here (Node ≥ 22.6 has `stream.duplexPair()`).
 */
export function forwardAgentChannel(channel: Duplex, options: ForwardAgentOptions = {}): AgentRelay {
  const path = options.socketPath ?? process.env.SSH_AUTH_SOCK;
  if (!path) {
    channel.destroy();
    return closedRelay(new AgentNotPresentError('SSH_AUTH_SOCK is not set'));
  }
  const sock = connect(path);
  let connected = false;
  sock.once('connect', () => {
    connected = true;
  });
  // Registered before the relay's own handler, so a failed connect is reported as such.
  sock.once('error', (err: NodeJS.ErrnoException) => {
    if (!connected)
      relay.close(new AgentNotPresentError(`cannot connect to agent at ${path}: ${err.code ?? err.message}`, { cause: err }));
  });
  const relay = relayFrames(channel, sock, options);
  return relay;
}
