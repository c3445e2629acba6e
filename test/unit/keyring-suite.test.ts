/**
 * The shared suites on tsagent's keyring: called directly (each "connection" a dispatch
 * session with its own bindings), and served over a real Unix socket by AgentServer and
 * reached through AgentClient.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { askpassConfirmer } from '../../src/agent/confirm';
import { dispatch } from '../../src/agent/dispatcher';
import { Keyring } from '../../src/agent/keyring';
import { AgentSession } from '../../src/agent/session';
import { AgentClient } from '../../src/client/agent-client';
import { AgentServer } from '../../src/server/agent-server';
import { runAgentSuite } from '../helpers/agent-suite';
import type { AgentHarness, HarnessOptions } from '../helpers/agent-suite';
import { runDestinationSuite } from '../helpers/destination-suite';

let nextConnection = 1;

async function inProcess({ askpassEnv }: HarnessOptions): Promise<AgentHarness> {
  const keyring = new Keyring({ confirmer: askpassConfirmer(askpassEnv) });
  const main = new AgentSession({ connectionId: nextConnection++ });
  return {
    impl: 'tsagent',
    agent: keyring,
    raw: (req) => dispatch(keyring, req, main),
    connect: async () => {
      const session = new AgentSession({ connectionId: nextConnection++ });
      return { request: (req) => dispatch(keyring, req, session), close: () => undefined };
    },
    close: async () => keyring.clear(),
  };
}

async function overSocket({ askpassEnv }: HarnessOptions): Promise<AgentHarness> {
  const keyring = new Keyring({ confirmer: askpassConfirmer(askpassEnv) });
  const server = new AgentServer({ agent: keyring });
  const dir = mkdtempSync(join(tmpdir(), 'tsagent-sock-'));
  const path = join(dir, 'agent.sock');
  await server.listen({ kind: 'path', path });
  const client = new AgentClient({ socketPath: path, timeoutMs: 10_000 });
  return {
    impl: 'tsagent',
    agent: client,
    raw: (req) => client.request(req),
    connect: async () => {
      const c = new AgentClient({ socketPath: path, timeoutMs: 10_000 });
      return { request: (req) => c.request(req), close: () => c.close() };
    },
    close: async () => {
      client.close();
      await server.close();
      keyring.clear();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

runAgentSuite('keyring, in process', inProcess);
runAgentSuite('keyring served over a Unix socket', overSocket);
runDestinationSuite('keyring, in process', inProcess);
runDestinationSuite('keyring served over a Unix socket', overSocket);
