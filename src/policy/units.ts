/**
 * The config's durations and sizes (POLICY.md §2): `"60s"`, `"15m"`, `"8h"`, `"1h30m"`,
 * `"2d"`, `"0"` (a bare number is seconds, as ssh-agent's -t reads it); `"10MB"`, `"512KiB"`.
 * Each returns undefined for text it does not read; the config loader turns that into an
 * error naming the line and key.
 */

const SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
const DURATION = /^(?:\d+[smhdw]?)+$/;
const DURATION_PART = /(\d+)([smhdw]?)/g;
/** Beyond this (about 136 years) a duration is a typo, and timers cannot hold it anyway. */
const MAX_DURATION_SECONDS = 0xffffffff;

export function parseDuration(text: string): number | undefined {
  if (text.length === 0 || text.length > 32 || !DURATION.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(DURATION_PART)) total += Number(m[1]) * SECONDS[m[2] || 's'];
  return Number.isSafeInteger(total) && total <= MAX_DURATION_SECONDS ? total : undefined;
}

const SIZE = /^(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/;
const SIZE_UNIT: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text);
  if (m === null) return undefined;
  const bytes = Number(m[1]) * SIZE_UNIT[m[2] ?? 'B'];
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}
