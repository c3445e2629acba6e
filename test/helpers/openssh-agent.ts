/**
 * The reference agent: OpenSSH's own `ssh-agent -D -a SOCK`, in a clean environment
 * (PATH, HOME=<its temp dir>, plus any extras such as SSH_ASKPASS), stopped by PID.
 */
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { findPeer } from './peers';
import { cleanEnv, removeDir, startDaemon, tempDir, waitForSocket } from './proc';
import type { DaemonHandle } from './proc';

export interface OpenSSHAgent {
  readonly socketPath: string;
  readonly pid: number;
  /** The agent's temp dir (holds the socket; removed by stop()). */
  readonly dir: string;
  readonly daemon: DaemonHandle;
  /** Environment for clients: PATH, HOME=dir, SSH_AUTH_SOCK=socketPath. */
  clientEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** Kills the agent by PID (SIGTERM, then SIGKILL) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface OpenSSHAgentOptions {
  /** Extra ssh-agent arguments, e.g. ['-t', '30'] or ['-O', 'no-restrict-websafe']. */
  args?: readonly string[];
  /** Extra environment for the agent, e.g. { SSH_ASKPASS, SSH_ASKPASS_REQUIRE: 'force', DISPLAY }. */
  env?: NodeJS.ProcessEnv;
  /** Bound on waiting for the socket. Default 10000. */
  timeoutMs?: number;
}

/**
 * Starts `ssh-agent -D -a <tmp>/agent.sock` and waits (bounded) until the socket accepts.
 * With `t`, registers `t.after(stop)`. Throws if ssh-agent is missing — call
 * `requirePeer(t, 'ssh-agent')` first to skip/fail with the usual policy.
 */
export async function startOpenSSHAgent(t?: Pick<TestContext, 'after'>, opts: OpenSSHAgentOptions = {}): Promise<OpenSSHAgent> {
  const bin = findPeer('ssh-agent');
  if (bin === undefined) throw new Error('ssh-agent is not installed (apt-get install -y openssh-client)');
  const dir = await tempDir('ossh-agent-');
  const socketPath = join(dir, 'agent.sock');
  const env = cleanEnv({ HOME: dir, ...opts.env });
  let daemon: DaemonHandle;
  try {
    daemon = await startDaemon(bin, ['-D', '-a', socketPath, ...(opts.args ?? [])], { env, name: 'ssh-agent' });
  } catch (e: unknown) {
    await removeDir(dir);
    throw e;
  }
  const stop = async (): Promise<void> => {
    try {
      await daemon.stop();
    } finally {
      await removeDir(dir);
    }
  };
  if (t !== undefined) t.after(() => stop());
  try {
    await waitForSocket(socketPath, opts.timeoutMs ?? 10_000, daemon);
  } catch (e: unknown) {
    await stop();
    throw e;
  }
  return {
    socketPath,
    pid: daemon.pid,
    dir,
    daemon,
    clientEnv: (extra: NodeJS.ProcessEnv = {}) => cleanEnv({ HOME: dir, SSH_AUTH_SOCK: socketPath, ...extra }),
    stop,
  };
}
