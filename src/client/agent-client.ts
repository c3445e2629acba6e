/**
 * A client for any ssh-agent (tsagent, OpenSSH, others) over a Unix socket or named pipe:
 * paramiko's `Agent` in TypeScript. Implements the same Agent interface as the keyring.
 *
 * One connection, opened on first use and reused; requests are pipelined and answered in
 * order (RFC 9987 §3), at most MAX_IN_FLIGHT at a time (the one pipeline limit, shared with
 * the daemon and the relay: src/stream/limits.ts), later ones wait their turn before they are
 * written; every request has a timeout, counted from when it is written; a connection that dies or times out
 * fails every waiting call with one error, and the next call opens a fresh connection.
 *
 * Process lifetime: while no request is pending the socket is unref'd, so an idle client
 * never keeps Node running; a pending request keeps it alive until answered or timed out.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { AddIdentityOptions, Agent, ExtensionResult } from '../agent/agent';
import {
  AgentError,
  AgentFailureError,
  AgentNotPresentError,
  AgentProtocolError,
  AgentTimeoutError,
  ConnectionClosedError,
  ExtensionFailureError,
  ProtocolError,
} from '../errors';
import { decodeResponse, encodeRequestFrame } from '../protocol/codec';
import { FrameDecoder, MAX_MESSAGE_LENGTH } from '../protocol/frame';
import type { Identity, Request, Response } from '../protocol/messages';
import { MAX_IN_FLIGHT } from '../stream/limits';
import { buildAddRequests } from './add-key';
import type { AddKeyOptions, PrivateKeySource } from './add-key';
import { AgentKey } from './agent-key';
import { QUERY, parseQueryReply } from './query';

/** OpenSSH's authfd.c MAX_AGENT_IDENTITIES: longer lists are refused. */
export const MAX_IDENTITIES = 2048;
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface AgentClientOptions {
  /** Socket path or Windows pipe; defaults to $SSH_AUTH_SOCK. */
  readonly socketPath?: string;
  /** Per-request (and connect) timeout in ms, default 30 s. Confirm prompts count against it. */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly resolve: (r: Response) => void;
  readonly reject: (e: Error) => void;
}

/** Any decode failure of what the peer sent becomes AgentProtocolError (keeps type and offset). */
export function asAgentProtocolError(err: unknown, what: string): AgentProtocolError {
  if (err instanceof AgentProtocolError) return err;
  if (err instanceof ProtocolError)
    return new AgentProtocolError(`${what}: ${err.message}`, err.messageType, err.offset, { cause: err });
  const detail = err instanceof Error ? err.message : String(err);
  return new AgentProtocolError(`${what}: ${detail}`, undefined, undefined, { cause: err });
}

export class AgentClient implements Agent {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private readonly pending: Pending[] = [];
  /** Requests beyond MAX_IN_FLIGHT, not yet written: `go` writes one, `stop` fails it. */
  private readonly waiting: { readonly go: () => void; readonly stop: (e: Error) => void }[] = [];
  /** Waiting requests let go but not yet written (they count against the limit). */
  private released = 0;

  /** Throws AgentNotPresentError when no socket is given and SSH_AUTH_SOCK is unset. */
  constructor(options: AgentClientOptions = {}) {
    const path = options.socketPath ?? process.env.SSH_AUTH_SOCK;
    if (!path) throw new AgentNotPresentError('SSH_AUTH_SOCK is not set');
    this.socketPath = path;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  private open(): Promise<Socket> {
    if (this.socket !== undefined) return Promise.resolve(this.socket);
    if (this.connecting !== undefined) return this.connecting;
    this.connecting = new Promise<Socket>((resolve, reject) => {
      const sock = connect(this.socketPath);
      const frames = new FrameDecoder(MAX_MESSAGE_LENGTH);
      const timer = setTimeout(() => {
        this.connecting = undefined;
        sock.destroy();
        reject(new AgentTimeoutError(`connecting to ${this.socketPath} timed out`));
      }, this.timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        this.socket = sock;
        this.connecting = undefined;
        resolve(sock);
      });
      sock.on('data', (chunk: Buffer) => this.onData(sock, frames, chunk));
      sock.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (this.socket === undefined) {
          this.connecting = undefined;
          reject(
            new AgentNotPresentError(`cannot connect to agent at ${this.socketPath}: ${err.code ?? err.message}`, { cause: err }),
          );
        } else if (this.socket === sock) {
          this.fail(new ConnectionClosedError(`agent connection failed: ${err.code ?? err.message}`, { cause: err }));
        }
      });
      sock.once('close', () => {
        clearTimeout(timer);
        if (this.socket !== sock) return;
        // Part of a frame and then EOF: whatever answered was not an agent finishing a reply.
        this.fail(
          frames.buffered > 0
            ? new AgentProtocolError(`connection closed inside a reply (${frames.buffered} bytes of a frame)`)
            : new ConnectionClosedError('agent closed the connection'),
        );
      });
    });
    return this.connecting;
  }

  private onData(sock: Socket, frames: FrameDecoder, chunk: Buffer): void {
    if (this.socket !== sock) return;
    let bodies: Buffer[];
    try {
      bodies = frames.push(chunk);
    } catch (err) {
      this.fail(asAgentProtocolError(err, 'bad reply framing'));
      return;
    }
    for (const body of bodies) {
      const waiter = this.pending.shift();
      if (waiter === undefined) {
        this.fail(new AgentProtocolError('unsolicited reply from agent', body[0]));
        return;
      }
      let resp: Response;
      try {
        resp = decodeResponse(body, { maxIdentities: MAX_IDENTITIES });
      } catch (err) {
        const e = asAgentProtocolError(err, 'bad reply');
        waiter.reject(e);
        this.fail(e);
        return;
      }
      waiter.resolve(resp);
    }
    while (this.waiting.length > 0 && this.pending.length + this.released < MAX_IN_FLIGHT) {
      this.released++;
      this.waiting.shift()!.go();
    }
    this.updateRef();
  }

  /** Keep the event loop alive only while a reply is awaited. */
  private updateRef(): void {
    if (this.pending.length > 0) this.socket?.ref();
    else this.socket?.unref();
  }

  /** Tears the connection down and fails everyone waiting on it. */
  private fail(err: Error): void {
    const sock = this.socket;
    this.socket = undefined;
    sock?.destroy();
    const waiting = this.pending.splice(0);
    for (const w of waiting) w.reject(err);
    for (const w of this.waiting.splice(0)) w.stop(err);
  }

  /** Sends one request and waits for its reply (pipelined behind earlier ones). */
  async request(req: Request): Promise<Response> {
    const sock = await this.open();
    // close() or a failure may have dropped this connection while we waited for it.
    if (this.socket !== sock) throw new ConnectionClosedError('agent connection closed');
    if (this.waiting.length > 0 || this.pending.length + this.released >= MAX_IN_FLIGHT) {
      await new Promise<void>((go, stop) => this.waiting.push({ go, stop }));
      this.released--;
      if (this.socket !== sock) throw new ConnectionClosedError('agent connection closed');
    }
    const bytes = encodeRequestFrame(req);
    return new Promise<Response>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Replies are positional: after a timeout the stream can no longer be trusted.
        this.fail(new AgentTimeoutError(`agent did not answer ${req.type} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.push({
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.updateRef();
      // An ADD frame carries private key fields: wipe our copy once the socket has taken it.
      sock.write(bytes, () => {
        if (req.type === 'add-identity') bytes.fill(0);
      });
    });
  }

  private async expect<T extends Response['type']>(req: Request, type: T): Promise<Extract<Response, { type: T }>> {
    const resp = await this.request(req);
    if (resp.type === type) return resp as Extract<Response, { type: T }>;
    throw unexpected(req, resp);
  }

  async list(): Promise<Identity[]> {
    const resp = await this.expect({ type: 'request-identities' }, 'identities');
    return [...resp.identities];
  }

  /** paramiko's `Agent.get_keys()`: the identities as AgentKeys, in the agent's order. */
  async getKeys(): Promise<AgentKey[]> {
    const ids = await this.list();
    try {
      return ids.map((id) => new AgentKey(this, id));
    } catch (err) {
      throw asAgentProtocolError(err, 'agent listed a malformed key');
    }
  }

  async sign(keyBlob: Buffer, data: Buffer, flags = 0): Promise<Buffer> {
    return (await this.expect({ type: 'sign', keyBlob, data, flags }, 'sign-response')).signature;
  }

  async add(identity: AddIdentityOptions): Promise<void> {
    const constraints = identity.constraints ?? [];
    await this.expect(
      { type: 'add-identity', key: identity.key, comment: identity.comment, constraints, constrained: constraints.length > 0 },
      'success',
    );
  }

  /**
   * Adds a private key from a file (path or contents, with a passphrase when encrypted) or a
   * node:crypto KeyObject, like `ssh-add [-t life] [-c] FILE`. With `certificate` the
   * certificate identity is added too, after the key (as ssh-add does with `-cert.pub`).
   * Returns the identities added, in order.
   */
  async addKey(source: PrivateKeySource, options: AddKeyOptions = {}): Promise<AgentKey[]> {
    const requests = await buildAddRequests(source, options);
    const keys: AgentKey[] = [];
    for (const { identity, blob } of requests) {
      await this.add(identity);
      keys.push(new AgentKey(this, { blob, comment: identity.comment }));
    }
    return keys;
  }

  async remove(keyBlob: Buffer): Promise<void> {
    await this.expect({ type: 'remove-identity', keyBlob }, 'success');
  }

  async removeAll(): Promise<void> {
    await this.expect({ type: 'remove-all-identities', legacy: false }, 'success');
  }

  async lock(passphrase: Buffer): Promise<void> {
    await this.expect({ type: 'lock', passphrase }, 'success');
  }

  async unlock(passphrase: Buffer): Promise<void> {
    await this.expect({ type: 'unlock', passphrase }, 'success');
  }

  async extension(name: string, contents: Buffer = Buffer.alloc(0)): Promise<ExtensionResult> {
    const resp = await this.request({ type: 'extension', name, contents });
    if (resp.type === 'success' || resp.type === 'extension-response') return resp;
    throw unexpected({ type: 'extension', name, contents }, resp);
  }

  /**
   * The extension names the agent supports (the `query` extension, PROTOCOL.agent §4.1).
   * An agent without `query` (OpenSSH 9.2's, for one) answers FAILURE: that is reported as
   * `[]`, nothing known to be supported.
   */
  async query(): Promise<string[]> {
    let resp: ExtensionResult;
    try {
      resp = await this.extension(QUERY);
    } catch (err) {
      if (err instanceof AgentFailureError) return [];
      throw err;
    }
    return parseQueryReply(resp);
  }

  /**
   * Closes the connection; calls still waiting fail with ConnectionClosedError. The client
   * stays usable: a later call opens a new connection.
   */
  close(): void {
    this.fail(new ConnectionClosedError('client closed'));
  }
}

function unexpected(req: Request, resp: Response): AgentError {
  if (resp.type === 'failure') return new AgentFailureError(`agent refused ${req.type}`);
  if (resp.type === 'extension-failure') return new ExtensionFailureError(`agent extension failed`);
  return new AgentProtocolError(`unexpected ${resp.type} reply to ${req.type}`);
}
