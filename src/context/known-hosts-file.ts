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

/** A hashed name, kept as written; decoded on its first comparison (most lines never are: only lines carrying the bound key). */
export interface HashedName {
  readonly salt: string;
  readonly hash: string;
  decoded?: { readonly salt: Buffer; readonly hash: Buffer } | null;
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
  const bar = field.indexOf('|', HASH_MAGIC.length);
  if (bar < 0) return undefined;
  return { salt: field.slice(HASH_MAGIC.length, bar), hash: field.slice(bar + 1) };
}

function decodeHashed(h: HashedName): { readonly salt: Buffer; readonly hash: Buffer } | null {
  if (h.decoded !== undefined) return h.decoded;
  let decoded: { salt: Buffer; hash: Buffer } | null = null;
  if (BASE64.test(h.salt) && BASE64.test(h.hash)) {
    const salt = Buffer.from(h.salt, 'base64');
    const hash = Buffer.from(h.hash, 'base64');
    if (salt.length === SHA1_LENGTH && hash.length === SHA1_LENGTH) decoded = { salt, hash };
  }
  h.decoded = decoded;
  return decoded;
}

/** True when `lookup` (see host-patterns.ts lookupName) hashes to this entry's name. */
export function hashedNameMatches(h: HashedName, lookup: string): boolean {
  const d = decodeHashed(h);
  if (d === null) return false;
  const mac = createHmac('sha1', d.salt).update(lookup).digest();
  return timingSafeEqual(mac, d.hash);
}

/** The key field as the index keys it: canonical base64 (what Buffer#toString('base64') gives). */
function canonicalKey(b64: string): string | undefined {
  if (!BASE64.test(b64)) return undefined;
  if (b64.length % 4 === 0) return b64;
  const key = Buffer.from(b64, 'base64');
  return key.length === 0 ? undefined : key.toString('base64');
}

export function parseKnownHosts(text: string, file: string): KnownHostsEntry[] {
  const out: KnownHostsEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fields = lines[i].trim().split(/[ \t]+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) continue;
    let marker: KnownHostsMarker = null;
    if (fields[0].startsWith('@')) {
      if (fields[0] === '@cert-authority') marker = 'cert-authority';
      else if (fields[0] === '@revoked') marker = 'revoked';
      else continue; // an unknown marker: OpenSSH ignores the line
      fields.shift();
    }
    const [hosts, , b64] = fields;
    const key = b64 === undefined ? undefined : canonicalKey(b64);
    if (hosts === undefined || key === undefined) continue;
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
    out.push({ marker, patterns, hashed, key, file, line: i + 1 });
  }
  return out;
}
