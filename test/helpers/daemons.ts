/**
 * Starting the two agents under test as real processes: tsagent's daemon binary and
 * OpenSSH's ssh-agent, each on a fresh socket in a fresh 0700 temp dir, with a clean env.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { findPeerOrFail } from './peers';
import { stopChild, waitForSocket } from './proc';

export const TSAGENT_BIN = resolve(__dirname, '../../../bin/tsagent.js');

export type AgentImpl = 'tsagent' | 'openssh';

export interface RunningDaemon {
  readonly impl: AgentImpl;
  readonly socketPath: string;
  readonly dir: string;
  readonly child: ChildProcess;
  /** What the daemon wrote on stderr so far (tsagent's JSON logs). */
  stderr(): string;
  stop(): Promise<void>;
}

export interface DaemonOptions {
  /** Extra environment for the agent (askpass settings...). */
  readonly env?: NodeJS.ProcessEnv;
  /** Extra arguments after `start -D -a SOCK` (tsagent) or `-D -a SOCK` (OpenSSH). */
  readonly args?: readonly string[];
}

export async function startDaemon(impl: AgentImpl, opts: DaemonOptions = {}): Promise<RunningDaemon> {
  const dir = mkdtempSync(join(tmpdir(), `tsagent-${impl}-`));
  const socketPath = join(dir, 'agent.sock');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...opts.env };
  const extra = opts.args ?? [];
  const child =
    impl === 'openssh'
      ? spawn(findPeerOrFail('ssh-agent'), ['-D', '-a', socketPath, ...extra], { env, stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(process.execPath, [TSAGENT_BIN, 'start', '-D', '-a', socketPath, ...extra], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    if (err.length < 4 * 1024 * 1024) err += s;
  });
  try {
    await waitForSocket(socketPath, 15_000, child);
  } catch (e) {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${impl} did not start: ${(e as Error).message}\n${err}`);
  }
  return {
    impl,
    socketPath,
    dir,
    child,
    stderr: () => err,
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
