/**
 * The readable form of audit records for `tsagent log`: an aligned table, one record a row
 * (time, event, program, destination, purpose, key, decision, reason). Text that came from a
 * peer (argv, names, comments) is shown as data: control characters escaped.
 */
import { basename } from 'node:path';
import type { AuditRecord } from '../agent/ports';
import { strings } from './query';

const HEADER = ['TIME', 'EVENT', 'PROGRAM', 'DESTINATION', 'PURPOSE', 'KEY', 'DECISION', 'REASON'] as const;

/** C0, DEL and C1 controls as \xNN (bidi overrides too: they reorder what the eye reads). */
export function escapeControls(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local time, to the second. */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

function shortFingerprint(fp: string): string {
  return fp.length > 19 ? `${fp.slice(0, 19)}…` : fp;
}

function program(r: AuditRecord): string {
  const p = r.process;
  if (p === null || p === undefined) return '-';
  if (typeof p.exe === 'string') return basename(p.exe);
  const a0 = strings(p.argv)[0];
  if (typeof a0 === 'string') return basename(a0);
  return typeof p.pid === 'number' ? `pid ${p.pid}` : '-';
}

function destination(r: AuditRecord): string {
  const d = r.destination;
  if (d === null || d === undefined) return '-';
  let s = typeof d.host === 'string' ? d.host : shortFingerprint(String(d.hostKey));
  if (typeof d.port === 'number') s = `${s}:${d.port}`;
  if (typeof d.user === 'string') s = `${d.user}@${s}`;
  const via = strings(d.via);
  if (via.length > 0) s += ` via ${via.map((v) => (v.startsWith('SHA256:') ? shortFingerprint(v) : v)).join(',')}`;
  else if (d.forwarded === true) s += ' (forwarded)';
  return s;
}

function key(r: AuditRecord): string {
  const k = r.key;
  if (k !== undefined && k !== null) return k.name ?? (k.comment !== '' ? k.comment : shortFingerprint(k.fingerprint));
  if (Array.isArray(r.keys)) return `${r.keys.length} key${r.keys.length === 1 ? '' : 's'}`;
  return '-';
}

export function tableRow(r: AuditRecord): string[] {
  return [formatTime(r.time), r.event, program(r), destination(r), r.purpose ?? '-', key(r), r.decision, r.reason ?? ''].map(
    (c) => escapeControls(String(c)),
  );
}

/** Column widths fitted to the header and these rows. */
export function columnWidths(rows: readonly (readonly string[])[]): number[] {
  const widths: number[] = HEADER.map((h) => h.length);
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return widths;
}

export function formatRow(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
    .join('  ')
    .trimEnd();
}

/** Header and rows, newline-terminated. */
export function formatTable(records: readonly AuditRecord[]): string {
  const rows = records.map(tableRow);
  const widths = columnWidths(rows);
  return [formatRow(HEADER, widths), ...rows.map((r) => formatRow(r, widths))].map((l) => `${l}\n`).join('');
}

export { HEADER as TABLE_HEADER };
