/**
 * A client for any ssh-agent (tsagent, OpenSSH, others) over a Unix socket or named pipe.
 * Implements the same Agent interface as the keyring. One connection, opened on first use
 * and reused; requests are pipelined and answered in order (RFC 9987 §3); every request has
 * a timeout; a connection that dies or times out fails every waiting call with one error.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { AddIdentityOptions, Agent, ExtensionResult } from '../agent/agent';
import {
  AgentError,
  AgentFailureError,
  AgentNotPresentError,
  AgentTimeoutError,
  ConnectionClosedError,
  ExtensionFailureError,
  ProtocolError,
} from '../errors';
import { decodeResponse, encodeRequestFrame } from '../protocol/codec';
import { FrameDecoder, MAX_MESSAGE_LENGTH } from '../protocol/frame';
import type { Identity, Request, Response } from '../protocol/messages';

/** OpenSSH's authfd.c MAX_AGENT_IDENTITIES: longer lists are refused. */
export const MAX_IDENTITIES = 2048;
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface AgentClientOptions {
  /** Socket path or Windows pipe; defaults to $SSH_AUTH_SOCK. */
  readonly socketPath?: string;
  /** Per-request timeout (ms). Confirm prompts count against it. */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly resolve: (r: Response) => void;
  readonly reject: (e: Error) => void;
}

export class AgentClient implements Agent {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private readonly pending: Pending[] = [];

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
        sock.destroy();
        reject(new AgentTimeoutError(`connecting to ${this.socketPath} timed out`));
      }, this.timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        this.socket = sock;
        this.connecting = undefined;
        resolve(sock);
      });
      sock.on('data', (chunk: Buffer) => {
        let bodies: Buffer[];
        try {
          bodies = frames.push(chunk);
        } catch (err) {
          this.fail(new ProtocolError(`bad reply framing: ${(err as Error).message}`, undefined, undefined, { cause: err }));
          return;
        }
        for (const body of bodies) {
          const waiter = this.pending.shift();
          if (waiter === undefined) {
            this.fail(new ProtocolError('unsolicited reply from agent'));
            return;
          }
          try {
            waiter.resolve(decodeResponse(body, { maxIdentities: MAX_IDENTITIES }));
          } catch (err) {
            waiter.reject(err as Error);
            this.fail(err as Error);
            return;
          }
        }
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (this.socket === undefined) {
          this.connecting = undefined;
          reject(new AgentNotPresentError(`cannot connect to agent at ${this.socketPath}: ${err.code ?? err.message}`, { cause: err }));
        } else {
          this.fail(new ConnectionClosedError(`agent connection failed: ${err.code ?? err.message}`, { cause: err }));
        }
      });
      sock.once('close', () => {
        clearTimeout(timer);
        if (this.socket === sock) this.fail(new ConnectionClosedError('agent closed the connection'));
      });
    });
    return this.connecting;
  }

  /** Tears the connection down and fails everyone waiting on it. */
  private fail(err: Error): void {
    const sock = this.socket;
    this.socket = undefined;
    sock?.destroy();
    const waiting = this.pending.splice(0);
    for (const w of waiting) w.reject(err);
  }

  /** Sends one request and waits for its reply (pipelined behind earlier ones). */
  async request(req: Request): Promise<Response> {
    const sock = await this.open();
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
      sock.write(encodeRequestFrame(req));
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

  /** Closes the connection; waiting calls fail with ConnectionClosedError. */
  close(): void {
    this.fail(new ConnectionClosedError('client closed'));
  }
}

function unexpected(req: Request, resp: Response): AgentError {
  if (resp.type === 'failure') return new AgentFailureError(`agent refused ${req.type}`);
  if (resp.type === 'extension-failure') return new ExtensionFailureError(`agent extension failed`);
  return new ProtocolError(`unexpected ${resp.type} reply to ${req.type}`);
}
