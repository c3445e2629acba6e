/**
 * The listening side: accepts connections on a Unix socket, a Windows named pipe or an
 * inherited systemd socket (fd 3), and serves the Agent on each. Knows nothing of keys.
 */
import { rmdirSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Logger } from '../log';
import type { AuditSink } from '../agent/ports';
import type { Agent } from '../agent/agent';
import { AgentSession } from '../agent/session';
import type { PeerCredentials } from '../agent/session';
import type { DestinationNamer } from '../context/types';
import type { ProcessSource } from '../context/process';
import { SocketError } from '../errors';
import { serveConnection } from './connection';
import type { PeerCheck } from './peer-check';
import { claimSocketPath, ensurePrivateDir, isWindowsPipe, listenPrivate } from '../stream/socket-path';
import type { SocketLocation } from '../stream/socket-path';
import { dirname } from 'node:path';

export type ListenTarget =
  | ({ readonly kind: 'path' } & SocketLocation)
  | {
      readonly kind: 'fd';
      readonly fd: number;
      /**
       * Where the parent of a background start bound this socket for us (as ssh-agent binds
       * before it forks): removed at close, with its directory, like a path of our own.
       * Absent for systemd's sockets, which are systemd's to remove.
       */
      readonly boundAt?: SocketLocation;
    };

export interface AgentServerOptions {
  readonly agent: Agent;
  readonly logger?: Logger;
  /** Decides per connection whether the peer may talk to the agent (SO_PEERCRED uid check). */
  readonly peerCheck?: PeerCheck;
  /** Names for the host keys connections bind to (known_hosts); default: none proven. */
  readonly namer?: DestinationNamer;
  /**
   * Where the peer process's facts come from, asked at accept and read at most once per
   * connection; default: pid and uid only.
   */
  readonly describePeer?: (peer: PeerCredentials | null, sock: Socket) => ProcessSource | undefined;
  /** The audit log, flushed before a sign reply leaves (POLICY.md §6). */
  readonly audit?: Pick<AuditSink, 'flush' | 'afterWrite'>;
  /**
   * Runs once the agent has had no connection for QUIET_MS (once per quiet spell): the
   * daemon hands the memory freed by the last burst of requests back to the system.
   */
  readonly onQuiet?: () => void;
  /** How long "quiet" is, in ms; default QUIET_MS. */
  readonly quietMs?: number;
}

/** How long the agent must have had no connection before onQuiet runs. */
export const QUIET_MS = 1000;

export class AgentServer {
  private readonly server: Server;
  private readonly connections = new Set<Socket>();
  private nextId = 1;
  private target: ListenTarget | undefined;
  /** The socket directory to remove at close: only one the agent created. */
  private createdDir: string | undefined;
  /** Pending onQuiet (armQuiet). */
  private quiet: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly options: AgentServerOptions) {
    // allowHalfOpen: a client that half-closes after its last request still gets its replies
    // (connection.ts closes our side once they are out). Node's default would end the
    // socket at the client's EOF, and a reply that took time (a prompt, a thread-pool
    // signature) would be lost.
    this.server = createServer({ pauseOnConnect: false, allowHalfOpen: true }, (sock) => this.accept(sock));
    // After the bind, an accept error (EMFILE, ...) must not take the agent down.
    this.server.on('error', (err: NodeJS.ErrnoException) => {
      if (this.target !== undefined) this.options.logger?.warn({ reason: err.code ?? err.message }, 'listener error');
    });
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(sock: Socket): void {
    const connectionId = this.nextId++;
    const verdict = this.options.peerCheck?.(sock);
    if (verdict !== undefined && !verdict.allowed) {
      this.options.logger?.warn(
        { conn: connectionId, peerPid: verdict.peer?.pid, peerUid: verdict.peer?.uid, reason: verdict.reason },
        'connection refused',
      );
      sock.destroy();
      return;
    }
    this.connections.add(sock);
    const peer = verdict?.peer === undefined ? undefined : { pid: verdict.peer.pid, uid: verdict.peer.uid };
    this.options.logger?.debug({ conn: connectionId, peerPid: peer?.pid, peerUid: peer?.uid }, 'connection opened');
    // The connection's one session: every request on it is judged with it.
    const processSource = this.options.describePeer?.(peer ?? null, sock);
    const session = new AgentSession({
      connectionId,
      peer: peer ?? null,
      namer: this.options.namer,
      ...(processSource === undefined ? {} : { processSource }),
    });
    void serveConnection(this.options.agent, sock, { logger: this.options.logger, session, audit: this.options.audit }).then(
      () => {
        session.close();
        this.connections.delete(sock);
        this.options.logger?.debug({ conn: connectionId }, 'connection closed');
        if (this.connections.size === 0) this.armQuiet();
      },
    );
  }

  /**
   * (Re)starts the quiet timer when the last connection closes. One timer, refreshed rather
   * than made again (a client that connects in a loop refreshes it each time); unref'd, and
   * it never wakes an agent that has been quiet since it last ran.
   */
  private armQuiet(): void {
    const onQuiet = this.options.onQuiet;
    if (onQuiet === undefined || this.target === undefined || this.closing) return;
    if (this.quiet !== undefined) {
      this.quiet.refresh();
      return;
    }
    this.quiet = setTimeout(() => {
      this.quiet = undefined;
      if (this.connections.size > 0 || this.target === undefined || this.closing) return;
      try {
        onQuiet();
      } catch (err) {
        this.options.logger?.warn({ reason: err instanceof Error ? err.message : String(err) }, 'quiet-time task failed');
      }
    }, this.options.quietMs ?? QUIET_MS);
    this.quiet.unref();
  }

  async listen(target: ListenTarget): Promise<void> {
    if (target.kind === 'fd') {
      await this.bind({ fd: target.fd });
      const at = target.boundAt;
      if (at?.ownedDir !== undefined && at.dirCreated === true && dirname(at.path) === at.ownedDir) this.createdDir = at.ownedDir;
    } else if (isWindowsPipe(target.path)) {
      await this.bind({ path: target.path });
    } else {
      const dir = target.ownedDir;
      // A directory refused here (foreign-owned, 0777...) was not ours and is left alone.
      if (dir !== undefined && (ensurePrivateDir(dir) || target.dirCreated === true) && dirname(target.path) === dir) {
        this.createdDir = dir;
      }
      try {
        await claimSocketPath(target.path);
        await listenPrivate(this.server, target.path);
      } catch (err) {
        this.removeCreatedDir();
        if (err instanceof SocketError) throw err;
        throw new SocketError(`cannot listen: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
    }
    this.target = target;
  }

  private bind(opts: { path: string } | { fd: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new SocketError(`cannot listen: ${err.code ?? err.message}`, { cause: err }));
      };
      this.server.once('error', onError);
      this.server.listen(opts, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  /** Stops listening, drops every connection, removes the socket and the directory we made. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.quiet);
    this.quiet = undefined;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const sock of this.connections) sock.destroy();
    await closed;
    const t = this.target;
    this.target = undefined;
    const path = t?.kind === 'path' ? t.path : t?.boundAt?.path;
    if (path !== undefined && !isWindowsPipe(path)) {
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
      this.removeCreatedDir();
    }
  }

  private removeCreatedDir(): void {
    const dir = this.createdDir;
    this.createdDir = undefined;
    if (dir === undefined) return;
    try {
      rmdirSync(dir);
    } catch {
      /* not empty or gone: leave it */
    }
  }
}
