/** Plain-text tables for the bench report. */

export type Align = 'l' | 'r';

/** Renders rows as a `|`-separated table with a header rule. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number): string => (align[i] === 'l' ? s.padEnd(widths[i]) : s.padStart(widths[i]));
  const line = (r: readonly string[]): string =>
    r
      .map((s, i) => cell(s, i))
      .join(' | ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-|-');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** ops/s: whole numbers from 100 up, one decimal below. */
export function fmtOps(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return v >= 100 ? Math.round(v).toString() : v.toFixed(1);
}

/** Milliseconds with three significant-ish digits. */
export function fmtMs(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  if (v < 1) return v.toFixed(3);
  if (v < 10) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  return v.toFixed(0);
}

export function fmtRatio(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return `${v.toFixed(2)}x`;
}

export function fmtPct(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return `${(v * 100).toFixed(0)}%`;
}

export function fmtMiB(kib: number | undefined): string {
  if (kib === undefined || !Number.isFinite(kib)) return '-';
  return `${(kib / 1024).toFixed(1)} MB`;
}
