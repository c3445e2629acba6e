/**
 * Where the agent's Unix socket lives and how it is made safe: a 0700 directory owned by
 * the user, the socket itself 0600 (created under umask 0177, since Node binds with the
 * process umask, usually giving 0755). An existing path is only replaced when it is a
 * stale socket that nothing answers on.
 */
import { chmodSync, mkdtempSync, mkdirSync, lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { SocketError } from '../errors';

/** The named pipe OpenSSH for Windows listens on; tsagent's default there. */
export const WINDOWS_DEFAULT_PIPE = '\\\\.\\pipe\\openssh-ssh-agent';

export function isWindowsPipe(path: string): boolean {
  return /^\\\\[.?]\\pipe\\/i.test(path);
}

export interface SocketLocation {
  readonly path: string;
  /** The socket's directory: made private (0700, ours; created if missing) before listening. */
  readonly ownedDir?: string;
  /**
   * True when `ownedDir` was already created for this agent (mkdtemp). A directory is removed
   * at exit only when the agent created it, here or when it listened: never one it found.
   */
  readonly dirCreated?: boolean;
}

/**
 * The default socket when `-a` is absent: `$XDG_RUNTIME_DIR/tsagent/agent.sock`, else a fresh
 * `$TMPDIR/tsagent-XXXXXX/agent.<pid>` (OpenSSH's `ssh-XXXXXXXXXX/agent.<ppid>` pattern);
 * on Windows, OpenSSH's named pipe.
 */
export function defaultSocketLocation(
  env: NodeJS.ProcessEnv,
  pid: number,
  platform: NodeJS.Platform = process.platform,
): SocketLocation {
  if (platform === 'win32') return { path: WINDOWS_DEFAULT_PIPE };
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) {
    const dir = join(runtime, 'tsagent');
    return { path: join(dir, 'agent.sock'), ownedDir: dir };
  }
  const dir = mkdtempSync(join(env.TMPDIR || '/tmp', 'tsagent-'), { encoding: 'utf8' });
  return { path: join(dir, `agent.${pid}`), ownedDir: dir, dirCreated: true };
}

/**
 * Creates `dir` 0700 if missing; refuses one that others could write or that is not ours.
 * Returns true when this call created it (the caller may then remove it again).
 */
export function ensurePrivateDir(dir: string): boolean {
  let created = false;
  try {
    lstatSync(dir);
  } catch {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    created = true;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new SocketError(`${dir} is not a directory`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new SocketError(`${dir} is not owned by the current user`);
  }
  if ((st.mode & 0o077) !== 0)
    throw new SocketError(`${dir} is accessible by other users (mode ${(st.mode & 0o777).toString(8)})`);
  return created;
}

/** True when something accepts connections on the Unix socket at `path` (bounded wait). */
export function socketIsLive(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(true); // it exists and did not refuse: treat as in use
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Makes `path` free for a new socket: nothing there is fine; a socket nobody answers on is
 * removed; a live socket or any other kind of file is refused and left alone.
 */
export async function claimSocketPath(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new SocketError(`${path} already exists and is not a socket`);
  if (await socketIsLive(path)) throw new SocketError(`an agent is already listening on ${path}`);
  unlinkSync(path);
}

/**
 * Binds `server` to a Unix socket that is never, even briefly, reachable by others: Node
 * binds synchronously inside listen() with the process umask (usually giving 0755), so the
 * umask is 0177 for exactly that call; then chmod 0600 for good measure.
 */
export function listenPrivate(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const old = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        try {
          chmodSync(path, 0o600);
          resolve();
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    } finally {
      process.umask(old);
    }
  });
}
