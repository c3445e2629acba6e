/**
 * `-t` lifetimes as OpenSSH's convtime() reads them: a number of seconds, or a sequence of
 * number+unit groups (s, m, h, d, w; case-insensitive), e.g. `90`, `1h30m`, `2d`.
 */
import { UsageError } from '../errors';

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
/** The constraint is a uint32 on the wire. */
const MAX_LIFETIME = 0xffffffff;

export function parseLifetime(text: string): number {
  if (!/^(\d+[smhdwSMHDW]?)+$/.test(text)) throw new UsageError(`Invalid lifetime ${JSON.stringify(text)}`);
  let total = 0;
  for (const m of text.matchAll(/(\d+)([smhdwSMHDW]?)/g)) {
    total += Number(m[1]) * UNIT_SECONDS[(m[2] || 's').toLowerCase()];
  }
  if (!Number.isSafeInteger(total) || total > MAX_LIFETIME) throw new UsageError(`Invalid lifetime ${JSON.stringify(text)}`);
  return total;
}
