/**
 * Reading the audit log back for `tsagent log` (POLICY.md §5): every record of the rotated
 * files and the current one, oldest first (so newest last), filtered. A line that does not
 * parse (a partial last line being written, a damaged line) is skipped.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { AuditRecord } from '../agent/ports';
import { UsageError } from '../errors';
import { matchPattern } from '../match';
import { auditFilesOldestFirst } from './paths';

export interface AuditFilter {
  /** Key name, comment or fingerprint (patterns: * ?); a list record matches on any fingerprint offered. */
  readonly key?: string;
  /** Destination host, any proven name, a `via` hop or the host key fingerprint (patterns, case-insensitive). */
  readonly host?: string;
  /** The peer's exe: a path pattern when it holds '/', else a basename pattern. */
  readonly process?: string;
  /** Records at or after this time. */
  readonly since?: Date;
  readonly decision?: string;
}

/** A parsed line when it looks like a record (an object with time, event and decision strings). */
export function parseRecordLine(line: string): AuditRecord | undefined {
  if (line.length < 2 || line[0] !== '{') return undefined;
  try {
    const v: unknown = JSON.parse(line);
    if (typeof v !== 'object' || v === null) return undefined;
    const o = v as Record<string, unknown>;
    if (typeof o.time !== 'string' || typeof o.event !== 'string' || typeof o.decision !== 'string') return undefined;
    return v as AuditRecord;
  } catch {
    return undefined;
  }
}

/** Complete lines of `text` as records; a last line without its newline is left out. */
export function parseRecords(text: string): AuditRecord[] {
  const out: AuditRecord[] = [];
  const end = text.lastIndexOf('\n');
  if (end < 0) return out;
  for (const line of text.slice(0, end).split('\n')) {
    const r = parseRecordLine(line);
    if (r !== undefined) out.push(r);
  }
  return out;
}

export function readAuditRecords(path: string, current?: string): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (const file of auditFilesOldestFirst(path)) {
    let text: string;
    try {
      // `current`: the current file's text as a follower already read it (runLog -f).
      text = file === path && current !== undefined ? current : readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const r of parseRecords(text)) out.push(r);
  }
  return out;
}

const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** `--since`: a duration back from now (`90s`, `15m`, `1h30m`, `2d`) or an ISO 8601 time. */
export function parseSince(s: string, now: number = Date.now()): Date {
  const m = DURATION.exec(s.trim());
  if (m !== null && s.trim() !== '') {
    const [d, h, min, sec] = [m[1], m[2], m[3], m[4]].map((x) => Number(x ?? 0)) as [number, number, number, number];
    return new Date(now - (((d * 24 + h) * 60 + min) * 60 + sec) * 1000);
  }
  const t = Date.parse(s);
  if (Number.isNaN(t))
    throw new UsageError(`--since ${JSON.stringify(s)}: expected a duration such as 1h or 30m, or an ISO time`);
  return new Date(t);
}

function globMatch(value: string | null | undefined, pattern: string, caseless = false): boolean {
  if (typeof value !== 'string') return false;
  return caseless ? matchPattern(value.toLowerCase(), pattern.toLowerCase()) : matchPattern(value, pattern);
}

/** A record read from disk may not have the shape its type says: keep only the strings. */
export function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function keyMatches(r: AuditRecord, k: string): boolean {
  const key = r.key;
  if (key !== undefined && key !== null) {
    if (globMatch(key.fingerprint, k) || globMatch(key.name, k) || globMatch(key.comment, k)) return true;
  }
  return strings(r.keys).some((fp) => globMatch(fp, k));
}

function hostMatches(r: AuditRecord, h: string): boolean {
  const d = r.destination;
  if (d === null || d === undefined) return false;
  const values = [d.host, d.hostKey, ...strings(d.names), ...strings(d.via)];
  return values.some((v) => globMatch(v, h, true));
}

function processMatches(r: AuditRecord, p: string): boolean {
  const exe = r.process?.exe;
  if (typeof exe !== 'string') return false;
  return p.includes('/') ? globMatch(exe, p) : globMatch(basename(exe), p);
}

export function matchesFilter(r: AuditRecord, f: AuditFilter): boolean {
  if (f.decision !== undefined && r.decision !== f.decision) return false;
  if (f.since !== undefined) {
    const t = Date.parse(r.time);
    if (Number.isNaN(t) || t < f.since.getTime()) return false;
  }
  if (f.key !== undefined && !keyMatches(r, f.key)) return false;
  if (f.host !== undefined && !hostMatches(r, f.host)) return false;
  if (f.process !== undefined && !processMatches(r, f.process)) return false;
  return true;
}
