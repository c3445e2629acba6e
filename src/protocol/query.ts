/**
 * The `query` extension (RFC 9987 §5.9.1; OpenSSH PROTOCOL.agent): an EXTENSION request with
 * no contents, answered by EXTENSION_RESPONSE whose contents are `string "query"`, then one
 * `string` per supported extension name.
 *
 * The older draft (draft-miller-ssh-agent-00), which sshpk-agent 1.8 implements, frames the
 * request with one more, empty, `string` after the name and expects SSH_AGENT_SUCCESS
 * followed by `uint32 count` and the names: an agent answers each form in its own framing.
 */
import { ProtocolError } from '../errors';
import { SshReader, SshWriter } from './wire';

export const QUERY = 'query';

export function encodeQueryReply(names: readonly string[]): Buffer {
  const w = new SshWriter(64).string(QUERY);
  for (const n of names) w.string(n);
  return Buffer.from(w.finish());
}

/** True for draft-00 framing: the request's contents are exactly one empty `string`. */
export function isDraft00Query(contents: Buffer): boolean {
  return contents.length === 4 && contents.readUInt32BE(0) === 0;
}

/** What follows SSH_AGENT_SUCCESS in a draft-00 `query` reply: `uint32 count`, then the names. */
export function encodeDraft00QueryReply(names: readonly string[]): Buffer {
  const w = new SshWriter(64).uint32(names.length);
  for (const n of names) w.string(n);
  return Buffer.from(w.finish());
}

/** The extension names in a `query` reply's contents; ProtocolError if malformed. */
export function decodeQueryReply(contents: Buffer): string[] {
  const r = new SshReader(contents);
  if (r.text() !== QUERY) throw new ProtocolError('query reply does not start with "query"');
  const names: string[] = [];
  while (!r.atEnd) names.push(r.text());
  return names;
}
