/**
 * Agent extensions (RFC 9987 §5.9; OpenSSH PROTOCOL.agent). Unknown names are a plain
 * FAILURE (5), which every client understands.
 */
import { AgentFailureError } from '../errors';
import { SESSION_BIND } from '../protocol/session-bind';
import { SshWriter } from '../protocol/wire';
import type { ExtensionResult } from './agent';

export const QUERY = 'query';

/** Every extension name this agent answers, in the order `query` reports them. */
export const SUPPORTED_EXTENSIONS: readonly string[] = [QUERY, SESSION_BIND];

/** `query` reply contents: string "query", then one string per supported extension. */
function queryReply(): Buffer {
  const w = new SshWriter(64).string(QUERY);
  for (const name of SUPPORTED_EXTENSIONS) w.string(name);
  return Buffer.from(w.finish());
}

export function handleExtension(name: string, _contents: Buffer): ExtensionResult {
  if (name === QUERY) return { type: 'extension-response', contents: queryReply() };
  throw new AgentFailureError(`unsupported extension ${JSON.stringify(name.slice(0, 64))}`);
}
