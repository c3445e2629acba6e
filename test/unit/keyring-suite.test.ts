/**
 * The shared Agent suite on tsagent's keyring: called directly, and served over a real Unix
 * socket by AgentServer and reached through AgentClient.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { askpassConfirmer } from '../../src/agent/confirm';
import { dispatch } from '../../src/agent/dispatcher';
import { Keyring } from '../../src/agent/keyring';
import { AgentClient } from '../../src/client/agent-client';
import { AgentServer } from '../../src/server/agent-server';
import { runAgentSuite } from '../helpers/agent-suite';

runAgentSuite('keyring, in process', async ({ askpassEnv }) => {
  const keyring = new Keyring({ confirmer: askpassConfirmer(askpassEnv) });
  return {
    impl: 'tsagent',
    agent: keyring,
    raw: (req) => dispatch(keyring, req, { connectionId: 0 }),
    close: async () => keyring.clear(),
  };
});

runAgentSuite('keyring served over a Unix socket', async ({ askpassEnv }) => {
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
    close: async () => {
      client.close();
      await server.close();
      keyring.clear();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
