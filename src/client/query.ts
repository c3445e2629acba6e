/**
 * The client's reading of a `query` reply (codec in src/protocol/query.ts): anything but a
 * well-formed EXTENSION_RESPONSE means the peer is not the agent it claims to be.
 */
import type { ExtensionResult } from '../agent/agent';
import { AgentProtocolError, ProtocolError } from '../errors';
import { decodeQueryReply } from '../protocol/query';

export { QUERY } from '../protocol/query';

export function parseQueryReply(resp: ExtensionResult): string[] {
  if (resp.type !== 'extension-response') throw new AgentProtocolError('query answered without a response body');
  try {
    return decodeQueryReply(resp.contents);
  } catch (err) {
    if (err instanceof ProtocolError) {
      throw new AgentProtocolError(`malformed query response: ${err.message}`, undefined, err.offset, { cause: err });
    }
    throw err;
  }
}
