/**
 * The shared suites through AgentClient against the real daemon (`tsagent start -D`) and
 * against OpenSSH's `ssh-agent -D -a` — the run that proves the suites encode OpenSSH's
 * behaviour rather than ours.
 */
import { AgentClient } from '../../src/client/agent-client';
import { runAgentSuite } from '../helpers/agent-suite';
import type { AgentHarness } from '../helpers/agent-suite';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentImpl } from '../helpers/daemons';
import { runDestinationSuite } from '../helpers/destination-suite';

async function harness(impl: AgentImpl, askpassEnv: NodeJS.ProcessEnv): Promise<AgentHarness> {
  const daemon = await startAgentDaemon(impl, { env: askpassEnv });
  const client = new AgentClient({ socketPath: daemon.socketPath, timeoutMs: 10_000 });
  return {
    impl,
    agent: client,
    raw: (req) => client.request(req),
    connect: async () => {
      const c = new AgentClient({ socketPath: daemon.socketPath, timeoutMs: 10_000 });
      return { request: (req) => c.request(req), close: () => c.close() };
    },
    close: async () => {
      client.close();
      await daemon.stop();
    },
  };
}

runAgentSuite('tsagent daemon over its socket', ({ askpassEnv }) => harness('tsagent', askpassEnv));
runAgentSuite("OpenSSH's ssh-agent (reference)", ({ askpassEnv }) => harness('openssh', askpassEnv));
runDestinationSuite('tsagent daemon over its socket', ({ askpassEnv }) => harness('tsagent', askpassEnv));
runDestinationSuite("OpenSSH's ssh-agent (reference)", ({ askpassEnv }) => harness('openssh', askpassEnv));
