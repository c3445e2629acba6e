/**
 * Host names and patterns as known_hosts uses them (OpenSSH sshd(8) "SSH_KNOWN_HOSTS FILE
 * FORMAT"): a host on a non-default port is written `[host]:port`; a pattern list is comma
 * separated, `*` and `?` are wildcards, `!pattern` excludes; names compare case-insensitively.
 */
import { matchPattern } from '../match';

export const DEFAULT_SSH_PORT = 22;

/** A host name with the port it is reached on (null: the default port). */
export interface HostCandidate {
  readonly name: string;
  readonly port: number | null;
}

function validPort(n: number): boolean {
  return Number.isInteger(n) && n > 0 && n < 65536;
}

/** The port as known_hosts keys it: 22 and absent are the same. */
export function normalPort(port: number | null | undefined): number | null {
  return port === null || port === undefined || port === DEFAULT_SSH_PORT || !validPort(port) ? null : port;
}

/** The string known_hosts lines are matched against: `host`, or `[host]:port` off port 22. */
export function lookupName(name: string, port: number | null): string {
  const host = name.toLowerCase();
  const p = normalPort(port);
  return p === null ? host : `[${host}]:${p}`;
}

/** `[host]:port` -> {host, port}; a bare name -> {name, null}. Undefined for a malformed bracket form. */
export function parseHostPort(s: string): HostCandidate | undefined {
  if (!s.startsWith('[')) return s.length === 0 ? undefined : { name: s, port: null };
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s);
  if (m === null) return undefined;
  const port = Number(m[2]);
  return validPort(port) ? { name: m[1], port: normalPort(port) } : undefined;
}

export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

/**
 * OpenSSH's match_hostname(): true when a positive pattern of the list matches `lookup`
 * (already lower-cased) and no negated one does.
 */
export function matchHostPatterns(lookup: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (!matchPattern(lookup, pattern)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}
