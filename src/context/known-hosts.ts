/**
 * Destination names proven by known_hosts (POLICY.md §1 "Names are proven, not claimed"),
 * in both directions OpenSSH itself uses:
 * - name -> keys (`nameHasKey`, for rules): a known_hosts line for `name` / `[name]:port`,
 *   plain or hashed, carries the bound host key — or, for a bound host certificate valid for
 *   that name, a `@cert-authority` line carries its signing CA (a certificate also matches
 *   lines of its plain key, as ssh falls back to the plain key).
 * - key -> names (`namesFor`, for labels): the literal names of plain lines that carry the
 *   key, and every candidate (from the peer's argv or the config) that a line confirms;
 *   hashed lines can only confirm candidates.
 * A key on any `@revoked` line (or a certificate whose CA is) gets no names and matches no name.
 *
 * Files: ~/.ssh/known_hosts, ~/.ssh/known_hosts2, /etc/ssh/ssh_known_hosts,
 * /etc/ssh/ssh_known_hosts2 and the config's extra files. Each is re-read when its inode,
 * size or mtime changes, checked at most once per `checkIntervalMs`; answers are cached per
 * host key until a file changes. Nothing here runs a program.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { certificateSignatureValid, hostCertificateValidFor } from '../keys/certificate';
import { encodePlainPublicKey, parsePublicKeyBlob, plainKeyOf } from '../protocol/public-key';
import type { Certificate } from '../protocol/public-key';
import { hasWildcard, lookupName, matchHostPatterns, parseHostPort } from './host-patterns';
import type { HostCandidate } from './host-patterns';
import { hashedNameMatches, parseKnownHosts } from './known-hosts-file';
import type { KnownHostsEntry } from './known-hosts-file';

export interface ProvenNames {
  /** Host names (without port), the confirmed candidates first, then plain entries in file order. */
  readonly names: readonly string[];
  /** The port of names[0] when its entry has `[host]:port` form, else null. */
  readonly port: number | null;
}

/** What the destination builder and the policy need of a resolver. */
export interface NameResolver {
  namesFor(hostKeyBlob: Buffer, candidates?: readonly HostCandidate[]): ProvenNames;
  nameHasKey(name: string, port: number | null, hostKeyBlob: Buffer): boolean;
}

export interface KnownHostsOptions {
  /** Default $HOME, else os.homedir(). */
  readonly home?: string;
  /** The config's `known-hosts` (`~` is $HOME), read after the defaults. */
  readonly extraFiles?: readonly string[];
  /** Default '/etc/ssh' (tests point it at a temp dir). */
  readonly systemDir?: string;
  /** Minimum time between checks of the files for changes. Default 1000 ms. */
  readonly checkIntervalMs?: number;
}

export function expandHome(path: string, home: string): string {
  return path === '~' ? home : path.startsWith('~/') ? join(home, path.slice(2)) : path;
}

/** The four files OpenSSH reads by default (ssh_config UserKnownHostsFile, GlobalKnownHostsFile), then the extras. */
export function knownHostsFiles(opts: KnownHostsOptions = {}): string[] {
  const home = opts.home ?? process.env.HOME ?? homedir();
  const sys = opts.systemDir ?? '/etc/ssh';
  return [
    join(home, '.ssh', 'known_hosts'),
    join(home, '.ssh', 'known_hosts2'),
    join(sys, 'ssh_known_hosts'),
    join(sys, 'ssh_known_hosts2'),
    ...(opts.extraFiles ?? []).map((f) => expandHome(f, home)),
  ];
}

/** What a bound host key blob is, as the index needs it. */
interface KeyFacts {
  /** base64 of the plain key (the certified key for a certificate). */
  readonly plain: string;
  /** base64 of the signing CA, for a certificate whose signature verifies. */
  readonly ca: string | null;
  readonly cert: Certificate | null;
}

const NO_NAMES: ProvenNames = { names: [], port: null };
const CACHE_LIMIT = 1024;

function keyFacts(blob: Buffer): KeyFacts | undefined {
  try {
    const key = parsePublicKeyBlob(blob);
    const plain = plainKeyOf(key);
    if (plain === undefined) return { plain: blob.toString('base64'), ca: null, cert: null };
    const plainB64 = encodePlainPublicKey(plain).toString('base64');
    if (key.kind !== 'certificate') return { plain: plainB64, ca: null, cert: null };
    const ca = certificateSignatureValid(key) ? key.signatureKey.toString('base64') : null;
    return { plain: plainB64, ca, cert: key };
  } catch {
    return undefined;
  }
}

interface FileState {
  readonly path: string;
  signature: string;
  entries: KnownHostsEntry[];
}

export class KnownHostsResolver implements NameResolver {
  private readonly files: FileState[];
  private readonly checkIntervalMs: number;
  private lastCheck = -Infinity;
  /** key base64 -> plain and @cert-authority entries carrying it */
  private index = new Map<string, KnownHostsEntry[]>();
  private revoked = new Set<string>();
  private readonly namesCache = new Map<string, ProvenNames>();
  private readonly hasKeyCache = new Map<string, boolean>();

  constructor(opts: KnownHostsOptions = {}) {
    this.files = knownHostsFiles(opts).map((path) => ({ path, signature: '', entries: [] }));
    this.checkIntervalMs = opts.checkIntervalMs ?? 1000;
  }

  get paths(): readonly string[] {
    return this.files.map((f) => f.path);
  }

  /** Reads the files now (at start and reload), so the first session-bind does not pay for the parse. */
  preload(): void {
    this.lastCheck = -Infinity;
    this.refresh();
  }

  namesFor(hostKeyBlob: Buffer, candidates: readonly HostCandidate[] = []): ProvenNames {
    this.refresh();
    const b64 = hostKeyBlob.toString('base64');
    const cacheKey = `${b64}\n${candidates.map((c) => lookupName(c.name, c.port)).join(',')}`;
    const hit = this.namesCache.get(cacheKey);
    if (hit !== undefined) return hit;
    const result = this.computeNames(hostKeyBlob, candidates);
    if (this.namesCache.size >= CACHE_LIMIT) this.namesCache.clear();
    this.namesCache.set(cacheKey, result);
    return result;
  }

  nameHasKey(name: string, port: number | null, hostKeyBlob: Buffer): boolean {
    this.refresh();
    const lookup = lookupName(name, port);
    const cacheKey = `${hostKeyBlob.toString('base64')}\n${lookup}`;
    const hit = this.hasKeyCache.get(cacheKey);
    if (hit !== undefined) return hit;
    const facts = keyFacts(hostKeyBlob);
    const result = facts !== undefined && !this.isRevoked(facts) && this.proven(facts, lookup, name.toLowerCase());
    if (this.hasKeyCache.size >= CACHE_LIMIT) this.hasKeyCache.clear();
    this.hasKeyCache.set(cacheKey, result);
    return result;
  }

  /** True when a @revoked line carries the key (or a certificate's CA). */
  revokedKey(hostKeyBlob: Buffer): boolean {
    this.refresh();
    const facts = keyFacts(hostKeyBlob);
    return facts !== undefined && this.isRevoked(facts);
  }

  private isRevoked(f: KeyFacts): boolean {
    return this.revoked.has(f.plain) || (f.ca !== null && this.revoked.has(f.ca));
  }

  private entriesFor(f: KeyFacts): KnownHostsEntry[] {
    const plain = (this.index.get(f.plain) ?? []).filter((e) => e.marker === null);
    if (f.ca === null) return plain;
    return [...plain, ...(this.index.get(f.ca) ?? []).filter((e) => e.marker === 'cert-authority')];
  }

  private entryProves(e: KnownHostsEntry, f: KeyFacts, lookup: string, name: string): boolean {
    const matches = e.hashed !== null ? hashedNameMatches(e.hashed, lookup) : matchHostPatterns(lookup, e.patterns);
    if (!matches) return false;
    if (e.marker !== 'cert-authority') return true;
    return f.cert !== null && hostCertificateValidFor(f.cert, name);
  }

  private proven(f: KeyFacts, lookup: string, name: string): boolean {
    return this.entriesFor(f).some((e) => this.entryProves(e, f, lookup, name));
  }

  private computeNames(blob: Buffer, candidates: readonly HostCandidate[]): ProvenNames {
    const f = keyFacts(blob);
    if (f === undefined || this.isRevoked(f)) return NO_NAMES;
    const entries = this.entriesFor(f);
    if (entries.length === 0) return NO_NAMES;
    const found: HostCandidate[] = [];
    const seen = new Set<string>();
    const add = (c: HostCandidate): void => {
      const name = c.name.toLowerCase();
      const lookup = lookupName(name, c.port);
      if (seen.has(lookup)) return;
      if (!entries.some((e) => this.entryProves(e, f, lookup, name))) return;
      seen.add(lookup);
      found.push({ name, port: c.port });
    };
    for (const c of candidates) add(c);
    for (const e of entries) {
      for (const p of e.patterns) {
        if (p.startsWith('!') || hasWildcard(p)) continue;
        const hp = parseHostPort(p);
        if (hp !== undefined) add(hp);
      }
    }
    if (found.length === 0) return NO_NAMES;
    const names = [...new Set(found.map((c) => c.name))];
    return { names, port: found[0].port };
  }

  /** Re-reads files whose inode, size or mtime changed; rebuilds the index when any did. */
  private refresh(): void {
    const now = Date.now();
    if (now - this.lastCheck < this.checkIntervalMs) return;
    this.lastCheck = now;
    let changed = false;
    for (const f of this.files) {
      let sig = 'absent';
      try {
        const st = statSync(f.path, { throwIfNoEntry: false });
        if (st !== undefined) sig = `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        sig = 'unreadable';
      }
      if (sig === f.signature) continue;
      changed = true;
      f.signature = sig;
      f.entries = [];
      if (sig === 'absent' || sig === 'unreadable') continue;
      try {
        f.entries = parseKnownHosts(readFileSync(f.path, 'utf8'), f.path);
      } catch {
        /* unreadable (permissions, a directory): no entries */
      }
    }
    if (!changed) return;
    const index = new Map<string, KnownHostsEntry[]>();
    const revoked = new Set<string>();
    for (const f of this.files) {
      for (const e of f.entries) {
        if (e.marker === 'revoked') {
          revoked.add(e.key);
          continue;
        }
        const list = index.get(e.key);
        if (list === undefined) index.set(e.key, [e]);
        else list.push(e);
      }
    }
    this.index = index;
    this.revoked = revoked;
    this.namesCache.clear();
    this.hasKeyCache.clear();
  }
}
