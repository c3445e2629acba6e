/**
 * Candidate destination names from the peer's argv when the peer is `ssh` (POLICY.md §1:
 * argv is only a candidate source; known_hosts must confirm a candidate before it names a
 * destination). ssh(1) syntax: options, the destination (`[user@]host` or
 * `ssh://[user@]host[:port]`), more options, then the remote command.
 */
import { basename } from 'node:path';
import { normalPort, parseHostPort } from './host-patterns';
import type { HostCandidate } from './host-patterns';
import type { ProcessInfo } from './types';

/** ssh's option letters that take an argument (OpenSSH ssh.c getopt string). */
const WITH_ARGUMENT = new Set('bceilmopBDEFIJLOPQRSwW');

function parsePort(s: string): number | null | undefined {
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n > 0 && n < 65536 ? normalPort(n) : undefined;
}

/** `ssh://[user@]host[:port]`, `[user@]host`; IPv6 literals in brackets. */
function parseDestination(arg: string): { host: string; port: number | null | undefined } | undefined {
  let rest = arg;
  let port: number | null | undefined;
  if (rest.startsWith('ssh://')) {
    rest = rest.slice('ssh://'.length).replace(/\/$/, '');
    const at = rest.lastIndexOf('@');
    if (at >= 0) rest = rest.slice(at + 1);
    const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
    if (bracket !== null) {
      rest = bracket[1]!;
      if (bracket[2] !== undefined) port = parsePort(bracket[2]);
    } else {
      const colon = rest.lastIndexOf(':');
      if (colon >= 0) {
        port = parsePort(rest.slice(colon + 1));
        if (port === undefined) return undefined;
        rest = rest.slice(0, colon);
      }
    }
  } else {
    const at = rest.lastIndexOf('@');
    if (at >= 0) rest = rest.slice(at + 1);
  }
  if (rest.length === 0 || /[\s/\0]/.test(rest)) return undefined;
  return { host: rest.toLowerCase(), port };
}

/** `-o Key=Value` / `-o Key Value`: the options that name the host key's known_hosts entry. */
function optionPair(s: string): [string, string] | undefined {
  const m = /^\s*([A-Za-z]+)\s*(?:=|\s)\s*(.*?)\s*$/.exec(s);
  return m === null ? undefined : [m[1].toLowerCase(), m[2]];
}

/**
 * The host names ssh's argv points at: the destination with its port (`-p`, `-o Port=`, or
 * the URI's), and the `-o HostKeyAlias=` / `-o HostName=` values. Never throws.
 */
export function sshArgvCandidates(argv: readonly string[]): HostCandidate[] {
  let dest: { host: string; port: number | null | undefined } | undefined;
  let port: number | null | undefined;
  const extra: string[] = [];
  const onOption = (letter: string, value: string): void => {
    if (letter === 'p') port = parsePort(value) ?? port;
    if (letter !== 'o') return;
    const kv = optionPair(value);
    if (kv === undefined || kv[1] === '') return;
    if (kv[0] === 'port') port = parsePort(kv[1]) ?? port;
    else if (kv[0] === 'hostkeyalias' || kv[0] === 'hostname') extra.push(kv[0] === 'hostname' ? kv[1].toLowerCase() : kv[1]);
  };
  let i = 1;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      if (dest === undefined && i < argv.length) dest = parseDestination(argv[i]);
      break;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const letter = a[j];
        if (!WITH_ARGUMENT.has(letter)) continue;
        const inline = a.slice(j + 1);
        if (inline !== '') onOption(letter, inline);
        else if (i + 1 < argv.length) onOption(letter, argv[++i]);
        break;
      }
      continue;
    }
    if (dest !== undefined) break; // the remote command starts
    dest = parseDestination(a);
    if (dest === undefined) break;
  }
  const out: HostCandidate[] = [];
  if (dest !== undefined) out.push({ name: dest.host, port: dest.port ?? port ?? null });
  for (const name of extra) {
    // HostKeyAlias replaces the host in known_hosts lookups (without a port); HostName keeps the port.
    out.push({ name, port: null });
    if (dest !== undefined && (dest.port ?? port ?? null) !== null) out.push({ name, port: dest.port ?? port ?? null });
  }
  return out;
}

/**
 * Candidates from the peer process: its argv when it is `ssh` (by exe or argv[0] basename).
 * The nearest ssh ancestor's argv is not read (only the peer's argv is), so a peer that is
 * not ssh itself gives none.
 */
export function peerCandidates(proc: ProcessInfo | null): HostCandidate[] {
  if (proc === null || proc.argv === null || proc.argv.length === 0) return [];
  const isSsh = (p: string | null | undefined): boolean => p !== null && p !== undefined && basename(p) === 'ssh';
  if (!isSsh(proc.exe) && !isSsh(proc.argv[0])) return [];
  try {
    return sshArgvCandidates(proc.argv);
  } catch {
    return [];
  }
}

/**
 * Candidates from the config (POLICY.md §1: every literal name in it): `name` or
 * `[name]:port`; patterns with wildcards and negations are not names.
 */
export function configCandidates(names: readonly string[]): HostCandidate[] {
  const out: HostCandidate[] = [];
  for (const n of names) {
    if (n.startsWith('!') || n.includes('*') || n.includes('?')) continue;
    const hp = parseHostPort(n);
    if (hp !== undefined) out.push({ name: hp.name.toLowerCase(), port: hp.port });
  }
  return out;
}
