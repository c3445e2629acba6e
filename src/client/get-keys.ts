/**
 * `getKeys()`: paramiko's `Agent().get_keys()`. No agent configured or reachable is not an
 * error, it is an empty list; something answering that is not an agent is AgentProtocolError.
 */
import { AgentNotPresentError } from '../errors';
import { AgentClient } from './agent-client';
import type { AgentClientOptions } from './agent-client';
import type { AgentKey } from './agent-key';

/**
 * The keys of the agent at `options.socketPath` (default `$SSH_AUTH_SOCK`), in its order.
 * `[]` when the variable is unset or nothing listens there (ENOENT, ECONNREFUSED, …);
 * AgentProtocolError when the peer does not speak the protocol; AgentTimeoutError when it
 * does not answer within `timeoutMs`. The connection is closed before returning; the keys
 * reconnect on their own to sign (and an idle connection never keeps Node running).
 */
export async function getKeys(options: AgentClientOptions = {}): Promise<AgentKey[]> {
  let client: AgentClient;
  try {
    client = new AgentClient(options);
  } catch (err) {
    if (err instanceof AgentNotPresentError) return [];
    throw err;
  }
  try {
    return await client.getKeys();
  } catch (err) {
    if (err instanceof AgentNotPresentError) return [];
    throw err;
  } finally {
    client.close();
  }
}
