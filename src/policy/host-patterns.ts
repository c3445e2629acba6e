/**
 * Host patterns of `[[key]] hosts` and `[[rule]] hosts` (POLICY.md §1, §2) matched against a
 * bound destination. Names are proven, not claimed:
 * - a literal name (`github.com`, or `[git.example]:2222` for another port) matches when a
 *   known_hosts line for that name carries the bound host key (name -> keys, asked of a
 *   HostKeyOracle), or when the destination's proven names already hold it;
 * - a wildcard pattern (`*.corp.example`) matches the names proven for the bound key
 *   (key -> names, Destination.names). A wildcard with a port (`[*.corp]:2222`) also needs
 *   that port; one without a port matches whatever the port.
 * Host names compare case-insensitively, as OpenSSH lowercases them.
 */
import type { Destination } from '../context/types';
import { matchPattern } from '../match';
import { patternProblem } from './patterns';

/** The known_hosts resolver's "name -> keys" direction, supplied by context/. */
export interface HostKeyOracle {
  /**
   * True when a known_hosts line (plain or hashed) for `name` (and `port`, null meaning 22)
   * lists the host key whose SHA256 fingerprint is `hostKey`.
   */
  nameHasKey(name: string, port: number | null, hostKey: string): boolean;
}

export interface HostPattern {
  readonly negated: boolean;
  /** Lowercased host part, without brackets and port. */
  readonly host: string;
  /** From `[host]:port`; null when no port was written. */
  readonly port: number | null;
  readonly wildcard: boolean;
}

export interface HostPatternList {
  readonly source: readonly string[];
  readonly items: readonly HostPattern[];
}

const BRACKETED = /^\[([^\]]+)\]:(\d{1,5})$/;

function compileHost(p: string): HostPattern | string {
  const problem = patternProblem(p);
  if (problem !== undefined) return problem;
  const negated = p.startsWith('!');
  let host = (negated ? p.slice(1) : p).toLowerCase();
  let port: number | null = null;
  if (host.startsWith('[')) {
    const m = BRACKETED.exec(host);
    const n = m === null ? 0 : Number(m[2]);
    if (m === null || n < 1 || n > 65535) return `host pattern ${JSON.stringify(p)} is not NAME or [NAME]:PORT`;
    host = m[1]!;
    port = n === 22 ? null : n;
  } else if (/[[\]]/.test(host)) {
    return `host pattern ${JSON.stringify(p)} is not NAME or [NAME]:PORT`;
  }
  return { negated, host, port, wildcard: /[*?]/.test(host) };
}

export function compileHostPatternList(list: readonly string[]): HostPatternList | string {
  if (list.length === 0) return 'must list at least one pattern';
  const items: HostPattern[] = [];
  for (const p of list) {
    const c = compileHost(p);
    if (typeof c === 'string') return c;
    items.push(c);
  }
  if (items.every((i) => i.negated))
    return 'only negated patterns: such a list matches nothing (add "*" to match everything else)';
  return { source: list, items };
}

function hostHit(item: HostPattern, dest: Destination, oracle: HostKeyOracle | undefined): boolean {
  if (item.wildcard) {
    if (item.port !== null && item.port !== dest.port) return false;
    for (const name of dest.names) if (matchPattern(name.toLowerCase(), item.host)) return true;
    return false;
  }
  if (item.port === (dest.port === 22 ? null : dest.port)) {
    for (const name of dest.names) if (name.toLowerCase() === item.host) return true;
  }
  return oracle !== undefined && oracle.nameHasKey(item.host, item.port, dest.hostKey);
}

/** match_pattern_list semantics over a destination; an unbound connection (null) matches nothing. */
export function matchHosts(list: HostPatternList, dest: Destination | null, oracle: HostKeyOracle | undefined): boolean {
  if (dest === null) return false;
  let found = false;
  for (const item of list.items) {
    if (hostHit(item, dest, oracle)) {
      if (item.negated) return false;
      found = true;
    }
  }
  return found;
}
