/**
 * The public half of a registered key file without its passphrase (POLICY.md §3): OpenSSH's
 * own format ("openssh-key-v1", PROTOCOL.key) stores the public keys unencrypted ahead of the
 * encrypted section; other formats need `FILE.pub`.
 */
import { ProtocolError } from '../errors';
import { SshReader } from '../protocol/wire';

const BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const END = '-----END OPENSSH PRIVATE KEY-----';
const MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');

export interface OpenSshKeyHeader {
  readonly blob: Buffer;
  readonly encrypted: boolean;
}

/** The first public key and whether the private section is encrypted; undefined for other formats. */
export function openSshKeyHeader(text: string): OpenSshKeyHeader | undefined {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start) return undefined;
  const raw = Buffer.from(text.slice(start + BEGIN.length, end).replace(/\s+/g, ''), 'base64');
  if (raw.length < MAGIC.length || !raw.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  try {
    const r = new SshReader(raw.subarray(MAGIC.length));
    const cipher = r.text();
    r.text(); // kdf name
    r.string(); // kdf options
    if (r.uint32() < 1) return undefined;
    return { blob: Buffer.from(r.string()), encrypted: cipher !== 'none' };
  } catch (err) {
    if (err instanceof ProtocolError) return undefined;
    throw err;
  }
}

/** A `.pub` line: `type base64 [comment]`. */
export function parsePublicLine(text: string): { readonly blob: Buffer; readonly comment: string } | undefined {
  const line = text.split('\n').find((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (line === undefined) return undefined;
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*))?$/.exec(line.replace(/\r$/, ''));
  if (m === null) return undefined;
  const blob = Buffer.from(m[2], 'base64');
  if (blob.length < 8) return undefined;
  return { blob, comment: (m[3] ?? '').trim() };
}
