/**
 * The `query` extension (RFC 9987 §5.9.1; OpenSSH PROTOCOL.agent): an EXTENSION request with
 * no contents, answered by EXTENSION_RESPONSE whose contents are `string "query"`, then one
 * `string` per supported extension name.
 */
import { ProtocolError } from '../errors';
import { SshReader, SshWriter } from './wire';

export const QUERY = 'query';

export function encodeQueryReply(names: readonly string[]): Buffer {
  const w = new SshWriter(64).string(QUERY);
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
