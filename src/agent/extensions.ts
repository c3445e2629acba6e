/**
 * Agent extensions answered without connection state (RFC 9987 §5.9; OpenSSH
 * PROTOCOL.agent). session-bind needs the connection and is handled by the keyring. Unknown
 * names are a plain FAILURE (5), which every client understands.
 */
import { AgentFailureError } from '../errors';
import { QUERY, encodeDraft00QueryReply, encodeQueryReply, isDraft00Query } from '../protocol/query';
import { SESSION_BIND } from '../protocol/session-bind';
import type { ExtensionResult } from './agent';

/** Every extension name this agent answers, in the order `query` reports them. */
export const SUPPORTED_EXTENSIONS: readonly string[] = [QUERY, SESSION_BIND];

const QUERY_REPLY: ExtensionResult = { type: 'extension-response', contents: encodeQueryReply(SUPPORTED_EXTENSIONS) };
/** sshpk-agent 1.8's `listExtensions()` reads only this older form (protocol/query.ts). */
const DRAFT00_QUERY_REPLY: ExtensionResult = { type: 'success', contents: encodeDraft00QueryReply(SUPPORTED_EXTENSIONS) };

export function handleExtension(name: string, contents: Buffer): ExtensionResult {
  if (name === QUERY) return isDraft00Query(contents) ? DRAFT00_QUERY_REPLY : QUERY_REPLY;
  throw new AgentFailureError(`unsupported extension ${JSON.stringify(name.slice(0, 64))}`);
}
