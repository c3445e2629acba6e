/**
 * The two agents under test as real processes: tsagent's daemon binary and OpenSSH's
 * ssh-agent, each on a fresh socket in a fresh 0700 temp dir, with a clean env. Both are
 * started through proc.ts's `startDaemon` (tracked, stopped by PID, bounded waits); OpenSSH's
 * via openssh-agent.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startOpenSSHAgent } from './openssh-agent';
import type { OpenSSHAgent } from './openssh-agent';
import { cleanEnv, removeDir, startDaemon as startProcess, tempDir, waitForSocket } from './proc';
import type { DaemonHandle } from './proc';

export const TSAGENT_BIN = resolve(__dirname, '../../../bin/tsagent.js');

export type AgentImpl = 'tsagent' | 'openssh';

export interface AgentDaemon {
  readonly impl: AgentImpl;
  readonly socketPath: string;
  readonly dir: string;
  readonly child: ChildProcess;
  /** What the daemon wrote on stderr so far (tsagent's JSON logs; the last 1 MiB). */
  stderr(): string;
  /** Stops the agent by PID (SIGTERM, then SIGKILL) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface AgentDaemonOptions {
  /** Extra environment for the agent (askpass settings...). */
  readonly env?: NodeJS.ProcessEnv;
  /** Extra arguments after `start -D -a SOCK` (tsagent) or `-D -a SOCK` (OpenSSH). */
  readonly args?: readonly string[];
}

const START_TIMEOUT_MS = 15_000;

function failedStart(impl: AgentImpl, e: unknown, stderr: string): Error {
  return new Error(`${impl} did not start: ${e instanceof Error ? e.message : String(e)}\n${stderr}`);
}

async function startOpenSSH(opts: AgentDaemonOptions): Promise<AgentDaemon> {
  let agent: OpenSSHAgent;
  try {
    agent = await startOpenSSHAgent(undefined, { env: opts.env, args: opts.args, timeoutMs: START_TIMEOUT_MS });
  } catch (e: unknown) {
    throw failedStart('openssh', e, '');
  }
  return {
    impl: 'openssh',
    socketPath: agent.socketPath,
    dir: agent.dir,
    child: agent.daemon.child,
    stderr: () => agent.daemon.stderr(),
    stop: () => agent.stop(),
  };
}

async function startTsagent(opts: AgentDaemonOptions): Promise<AgentDaemon> {
  const dir = await tempDir('tsagent-tsagent-');
  const socketPath = join(dir, 'agent.sock');
  const env = cleanEnv({ HOME: dir, ...opts.env });
  let daemon: DaemonHandle;
  try {
    daemon = await startProcess(process.execPath, [TSAGENT_BIN, 'start', '-D', '-a', socketPath, ...(opts.args ?? [])], {
      env,
      name: 'tsagent',
    });
  } catch (e: unknown) {
    await removeDir(dir);
    throw failedStart('tsagent', e, '');
  }
  const stop = async (): Promise<void> => {
    try {
      await daemon.stop();
    } finally {
      await removeDir(dir);
    }
  };
  try {
    await waitForSocket(socketPath, START_TIMEOUT_MS, daemon);
  } catch (e: unknown) {
    await stop();
    throw failedStart('tsagent', e, daemon.stderr());
  }
  return { impl: 'tsagent', socketPath, dir, child: daemon.child, stderr: () => daemon.stderr(), stop };
}

/** Starts `impl` on `<fresh dir>/agent.sock` and waits (bounded) until the socket accepts. */
export function startAgentDaemon(impl: AgentImpl, opts: AgentDaemonOptions = {}): Promise<AgentDaemon> {
  return impl === 'openssh' ? startOpenSSH(opts) : startTsagent(opts);
}
