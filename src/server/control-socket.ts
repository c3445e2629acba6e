/**
 * The control socket (POLICY.md §5): `AGENT_SOCKET.ctl`, 0600 in the agent socket's 0700
 * directory, the same peer-uid check as the agent socket, created and removed with it. It is
 * a separate socket, so `ssh -A` (which forwards only SSH_AUTH_SOCK) can never reach it.
 * The protocol is in protocol/control.ts. Commands are a registry of handlers, so later
 * features (approvals: approve, deny, grants, revoke) add theirs without touching this file.
 */
import { unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Logger } from '../log';
import { AgentError, SocketError } from '../errors';
import { CONTROL_PROTOCOL_VERSION, LineSplitter, decodeControlRequest, encodeControlLine } from '../protocol/control';
import type { ControlResponse, JsonValue, KeyJson, StatusJson } from '../protocol/control';
import type { PeerCheck } from './peer-check';
import { claimSocketPath, listenPrivate } from '../stream/socket-path';

export interface ControlPeer {
  readonly pid: number;
  readonly uid: number;
}

export type ControlArgs = { readonly [k: string]: JsonValue };

/** A command's implementation. Throw an AgentError to answer `ok:false` with its code and message. */
export type ControlHandler = (args: ControlArgs, peer: ControlPeer | undefined) => JsonValue | Promise<JsonValue>;

/** What the daemon offers the core commands; the integration implements it. */
export interface ControlTarget {
  status(): StatusJson;
  keys(): readonly KeyJson[];
  /** Re-reads the config; throws ConfigError (old config kept) when it is invalid. Returns warnings (e.g. key files that failed). */
  reload(): Promise<readonly string[]> | readonly string[];
  /** Decrypts a registered key now; throws KeyFileError. The passphrase is zeroed by the callee. */
  unlockKey(name: string, passphrase: Buffer): Promise<void>;
}

export type ControlListenTarget =
  | { readonly kind: 'path'; readonly path: string }
  /** `boundAt`: the path a background start's parent bound it at, removed at close. */
  | { readonly kind: 'fd'; readonly fd: number; readonly boundAt?: { readonly path: string } };

export interface ControlServerOptions {
  readonly logger?: Logger;
  readonly peerCheck?: PeerCheck;
}

const MAX_PENDING_REQUESTS = 16;

class BadArgs extends AgentError {
  readonly code = 'USAGE';
}

export class ControlServer {
  private readonly server: Server;
  private readonly handlers = new Map<string, ControlHandler>();
  private readonly connections = new Set<Socket>();
  private path: string | undefined;

  constructor(private readonly options: ControlServerOptions = {}) {
    this.server = createServer((sock) => this.accept(sock));
    this.server.on('error', (err: NodeJS.ErrnoException) => {
      this.options.logger?.warn({ reason: err.code ?? err.message }, 'control listener error');
    });
  }

  /** Adds a command; a name registered twice is a programming error. */
  register(command: string, handler: ControlHandler): void {
    if (this.handlers.has(command)) throw new Error(`control command ${command} registered twice`);
    this.handlers.set(command, handler);
  }

  async listen(target: ControlListenTarget): Promise<void> {
    if (target.kind === 'fd') {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen({ fd: target.fd }, () => {
          this.server.off('error', reject);
          resolve();
        });
      }).catch((err: NodeJS.ErrnoException) => {
        throw new SocketError(`cannot listen on the control socket: ${err.code ?? err.message}`, { cause: err });
      });
      this.path = target.boundAt?.path;
      return;
    }
    await claimSocketPath(target.path);
    try {
      await listenPrivate(this.server, target.path);
    } catch (err) {
      throw new SocketError(
        `cannot listen on the control socket: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { cause: err },
      );
    }
    this.path = target.path;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.connections) s.destroy();
    if (this.server.listening) await closed;
    if (this.path !== undefined) {
      try {
        unlinkSync(this.path);
      } catch {
        /* already gone */
      }
      this.path = undefined;
    }
  }

  private accept(sock: Socket): void {
    const verdict = this.options.peerCheck?.(sock);
    if (verdict !== undefined && !verdict.allowed) {
      this.options.logger?.warn(
        { peerPid: verdict.peer?.pid, peerUid: verdict.peer?.uid, reason: verdict.reason },
        'control connection refused',
      );
      sock.destroy();
      return;
    }
    const peer = verdict?.peer === undefined ? undefined : { pid: verdict.peer.pid, uid: verdict.peer.uid };
    this.connections.add(sock);
    const lines = new LineSplitter();
    // Requests on one connection are answered in order, one at a time; a client that piles
    // up more than a few unanswered ones is not a `tsagent` command, and is dropped.
    let queue = Promise.resolve();
    let waiting = 0;
    sock.on('data', (chunk: Buffer) => {
      const got = lines.push(chunk);
      chunk.fill(0);
      if (got === undefined || waiting + got.length > MAX_PENDING_REQUESTS) {
        lines.clear();
        for (const l of got ?? []) l.fill(0);
        sock.destroy();
        return;
      }
      waiting += got.length;
      for (const line of got) {
        queue = queue.then(async () => {
          await this.answer(sock, line, peer);
          waiting--;
        });
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      lines.clear();
      this.connections.delete(sock);
    });
  }

  private async answer(sock: Socket, line: Buffer, peer: ControlPeer | undefined): Promise<void> {
    const req = decodeControlRequest(line);
    line.fill(0);
    let res: ControlResponse;
    if (typeof req === 'string') {
      res = { v: CONTROL_PROTOCOL_VERSION, id: 0, ok: false, error: { code: 'USAGE', message: req } };
    } else {
      const handler = this.handlers.get(req.command);
      try {
        if (handler === undefined) throw new BadArgs(`unknown command ${req.command}`);
        res = { v: CONTROL_PROTOCOL_VERSION, id: req.id, ok: true, result: await handler(req.args, peer) };
      } catch (err) {
        const known = err instanceof AgentError;
        if (!known)
          this.options.logger?.warn(
            { command: req.command, reason: err instanceof Error ? err.name : 'error' },
            'control command failed',
          );
        res = {
          v: CONTROL_PROTOCOL_VERSION,
          id: req.id,
          ok: false,
          error: known ? { code: err.code, message: err.message } : { code: 'FAILURE', message: 'internal error' },
        };
      }
    }
    if (!sock.destroyed) sock.write(encodeControlLine(res));
  }
}

function stringArg(args: ControlArgs, name: string): string {
  const v = args[name];
  if (typeof v !== 'string') throw new BadArgs(`argument ${name} must be a string`);
  return v;
}

/** The commands of POLICY.md §5 that this issue brings: status, keys, reload, unlock-key. */
export function registerCoreCommands(server: ControlServer, target: ControlTarget): void {
  server.register('status', () => target.status() as unknown as JsonValue);
  server.register('keys', () => target.keys() as unknown as JsonValue);
  server.register('reload', async () => ({ warnings: [...(await target.reload())] }));
  server.register('unlock-key', async (args) => {
    const name = stringArg(args, 'name');
    const passphrase = Buffer.from(stringArg(args, 'passphrase'), 'base64');
    await target.unlockKey(name, passphrase);
    return { name, loaded: true };
  });
}
