/**
 * One known_hosts file, parsed (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"):
 *
 *   [@cert-authority|@revoked] hostpatterns keytype base64-key [comment]
 *
 * hostpatterns is a comma list of patterns, or one hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`
 * (`ssh-keygen -H`). Pure: text in, entries out. Lines that do not parse are skipped, as
 * OpenSSH skips them.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type KnownHostsMarker = 'cert-authority' | 'revoked' | null;

export interface HashedName {
  readonly salt: Buffer;
  readonly hash: Buffer;
}

export interface KnownHostsEntry {
  readonly marker: KnownHostsMarker;
  /** Plain patterns; empty for a hashed entry. */
  readonly patterns: readonly string[];
  readonly hashed: HashedName | null;
  /** The key blob, base64 as in the file (normalised): the index key. */
  readonly key: string;
  readonly file: string;
  readonly line: number;
}

const HASH_MAGIC = '|1|';
const SHA1_LENGTH = 20;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function parseHashed(field: string): HashedName | undefined {
  const parts = field.slice(HASH_MAGIC.length).split('|');
  if (parts.length !== 2 || !BASE64.test(parts[0]!) || !BASE64.test(parts[1]!)) return undefined;
  const salt = Buffer.from(parts[0]!, 'base64');
  const hash = Buffer.from(parts[1]!, 'base64');
  return salt.length === SHA1_LENGTH && hash.length === SHA1_LENGTH ? { salt, hash } : undefined;
}

/** True when `lookup` (see host-patterns.ts lookupName) hashes to this entry's name. */
export function hashedNameMatches(h: HashedName, lookup: string): boolean {
  const mac = createHmac('sha1', h.salt).update(lookup).digest();
  return timingSafeEqual(mac, h.hash);
}

export function parseKnownHosts(text: string, file: string): KnownHostsEntry[] {
  const out: KnownHostsEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fields = lines[i]!.trim().split(/[ \t]+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) continue;
    let marker: KnownHostsMarker = null;
    if (fields[0].startsWith('@')) {
      if (fields[0] === '@cert-authority') marker = 'cert-authority';
      else if (fields[0] === '@revoked') marker = 'revoked';
      else continue; // an unknown marker: OpenSSH ignores the line
      fields.shift();
    }
    const [hosts, , b64] = fields;
    if (hosts === undefined || b64 === undefined || !BASE64.test(b64)) continue;
    let hashed: HashedName | null = null;
    let patterns: string[] = [];
    if (hosts.startsWith(HASH_MAGIC)) {
      const h = parseHashed(hosts);
      if (h === undefined) continue;
      hashed = h;
    } else {
      patterns = hosts.split(',').filter((p) => p !== '');
      if (patterns.length === 0) continue;
    }
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) continue;
    out.push({ marker, patterns, hashed, key: key.toString('base64'), file, line: i + 1 });
  }
  return out;
}
