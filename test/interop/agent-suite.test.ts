/**
 * The shared Agent suite through AgentClient against the real daemon (`tsagent start -D`)
 * and against OpenSSH's `ssh-agent -D -a` — the run that proves the suite encodes OpenSSH's
 * behaviour rather than ours.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AgentClient } from '../../src/client/agent-client';
import { runAgentSuite } from '../shared/agent-suite';
import type { AgentHarness } from '../shared/agent-suite';
import { findPeerOrFail, stopChild, waitForSocket } from '../shared/peer-process';

const BIN = resolve(__dirname, '../../../bin/tsagent.js');

async function harness(impl: 'tsagent' | 'openssh', askpassEnv: NodeJS.ProcessEnv): Promise<AgentHarness> {
  const dir = mkdtempSync(join(tmpdir(), `tsagent-${impl}-`));
  const path = join(dir, 'agent.sock');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...askpassEnv };
  let child: ChildProcess;
  if (impl === 'openssh') {
    child = spawn(findPeerOrFail('ssh-agent'), ['-D', '-a', path], { env, stdio: 'ignore' });
  } else {
    child = spawn(process.execPath, [BIN, 'start', '-D', '-a', path], { env, stdio: 'ignore' });
  }
  await waitForSocket(path, 10_000, child);
  const client = new AgentClient({ socketPath: path, timeoutMs: 10_000 });
  return {
    impl,
    agent: client,
    raw: (req) => client.request(req),
    close: async () => {
      client.close();
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

runAgentSuite('tsagent daemon over its socket', ({ askpassEnv }) => harness('tsagent', askpassEnv));
runAgentSuite("OpenSSH's ssh-agent (reference)", ({ askpassEnv }) => harness('openssh', askpassEnv));
