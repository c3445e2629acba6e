/**
 * Agent extensions answered without connection state (RFC 9987 §5.9; OpenSSH
 * PROTOCOL.agent). session-bind needs the connection and is handled by the keyring. Unknown
 * names are a plain FAILURE (5), which every client understands.
 */
import { AgentFailureError } from '../errors';
import { QUERY, encodeQueryReply } from '../protocol/query';
import { SESSION_BIND } from '../protocol/session-bind';
import type { ExtensionResult } from './agent';

/** Every extension name this agent answers, in the order `query` reports them. */
export const SUPPORTED_EXTENSIONS: readonly string[] = [QUERY, SESSION_BIND];

const QUERY_REPLY: ExtensionResult = { type: 'extension-response', contents: encodeQueryReply(SUPPORTED_EXTENSIONS) };

export function handleExtension(name: string, _contents: Buffer): ExtensionResult {
  if (name === QUERY) return QUERY_REPLY;
  throw new AgentFailureError(`unsupported extension ${JSON.stringify(name.slice(0, 64))}`);
}
