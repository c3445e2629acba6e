/**
 * Agent forwarding, server side: what sshd does for a session that asked for
 * `auth-agent-req@openssh.com`. A local Unix socket (0600, in a fresh 0700 directory) stands
 * for the client's agent; each connection to it opens an `auth-agent@openssh.com` channel
 * back to the client and relays frames over it. paramiko: AgentServerProxy + AgentLocalProxy.
 */
import { mkdtemp, rmdir, unlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { AgentTimeoutError, SocketError } from '../errors';
import { ensurePrivateDir, listenPrivate } from '../stream/socket-path';
import { DEFAULT_TIMEOUT_MS } from './agent-client';
import { relayFrames } from './frame-relay';
import type { AgentRelay, RelayOptions } from './frame-relay';

export interface ExposeAgentOptions extends RelayOptions {
  /** Where the fresh 0700 directory is made; default `os.tmpdir()`. */
  readonly tmpDir?: string;
  /** Bound on opening one forwarded channel, ms (default 30 s). */
  readonly openTimeoutMs?: number;
}

export interface ForwardedAgent {
  /** The Unix socket that stands for the forwarded agent. */
  readonly socketPath: string;
  /** Environment for a child process (paramiko's `get_env()`). */
  readonly env: { readonly SSH_AUTH_SOCK: string };
  /** Stops listening, drops every relayed connection, removes the socket and its directory. */
  close(): Promise<void>;
}

/** `open()` within `ms`; a channel that arrives after the deadline is destroyed. */
function openWithin(open: () => Promise<Duplex>, ms: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new AgentTimeoutError(`forwarded agent channel did not open within ${ms} ms`));
    }, ms);
    Promise.resolve()
      .then(open)
      .then(
        (channel) => {
          clearTimeout(timer);
          if (late) channel.destroy();
          else resolve(channel);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
  });
}

/**
 * Exposes a forwarded agent as a local socket. `openChannel` opens one agent channel to the
 * SSH client (for ssh2's server: the connection's auth-agent channel opener). Call `close()`
 * when the session ends.
 */
export async function exposeForwardedAgent(
  openChannel: () => Promise<Duplex>,
  options: ExposeAgentOptions = {},
): Promise<ForwardedAgent> {
  const openTimeoutMs = options.openTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'tsagent-fwd-'));
  const socketPath = join(dir, 'agent.sock');
  const relays = new Set<AgentRelay>();
  const conns = new Set<Socket>();
  let closing = false;

  const attach = async (conn: Socket): Promise<void> => {
    let channel: Duplex;
    try {
      channel = await openWithin(openChannel, openTimeoutMs);
    } catch {
      conn.destroy();
      return;
    }
    if (closing || conn.destroyed) {
      channel.destroy();
      return;
    }
    const relay = relayFrames(conn, channel, options);
    relays.add(relay);
    void relay.closed.then(() => relays.delete(relay));
  };

  // allowHalfOpen: a client that shuts down its sending side still gets its replies.
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (conn) => {
    conn.on('error', () => undefined); // the relay reports errors; before it exists, the socket just goes
    if (closing) {
      conn.destroy();
      return;
    }
    conns.add(conn);
    conn.once('close', () => conns.delete(conn));
    void attach(conn);
  });

  const removeFiles = async (): Promise<void> => {
    await unlink(socketPath).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  };

  try {
    ensurePrivateDir(dir);
    await listenPrivate(server, socketPath);
  } catch (err) {
    server.close();
    await removeFiles();
    throw new SocketError(
      `cannot listen for the forwarded agent: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    );
  }

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const relay of relays) relay.close();
      for (const conn of conns) conn.destroy();
      await stopped;
      await removeFiles();
    })();
    return closed;
  };
  return { socketPath, env: { SSH_AUTH_SOCK: socketPath }, close };
}
