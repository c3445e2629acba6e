/**
 * Short ids for approvals and grants: typed by hand (`tsagent approve k3x9qa`), yet not
 * guessable by counting. Six characters of Crockford's base32 alphabet (no i, l, o, u: nothing
 * to misread) from crypto randomness: 2^30 values, no modulo bias (256 is a multiple of 32).
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
export const ID_LENGTH = 6;

/** A fresh id for which `taken` is false. */
export function newId(taken: (id: string) => boolean): string {
  for (;;) {
    const bytes = randomBytes(ID_LENGTH);
    let id = '';
    for (const b of bytes) id += ALPHABET[b & 31];
    if (!taken(id)) return id;
  }
}
