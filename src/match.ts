/**
 * OpenSSH's match_pattern() (match.c): `*` matches any run of characters, `?` any one;
 * everything else literally, case-sensitively. Used for user and host certificate principals.
 */
export function matchPattern(s: string, pattern: string): boolean {
  let si = 0;
  let pi = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    const pc = pattern[pi];
    if (pc === '*') {
      starP = pi++;
      starS = si;
    } else if (pc !== undefined && (pc === '?' || pc === s[si])) {
      pi++;
      si++;
    } else if (starP >= 0) {
      pi = starP + 1;
      si = ++starS;
    } else {
      return false;
    }
  }
  while (pattern[pi] === '*') pi++;
  return pi === pattern.length;
}

/**
 * OpenSSH's match_pattern_list() (match.c): `list` is comma-separated patterns, each maybe
 * negated with `!`. 1 when a positive pattern matches and no negated one does, -1 when a
 * negated one matches, 0 when none matches. Used for the PKCS#11 provider allowlist (`-P`).
 */
export function matchPatternList(s: string, list: string): -1 | 0 | 1 {
  let positive: 0 | 1 = 0;
  for (const item of list.split(',')) {
    const negated = item.startsWith('!');
    const pattern = negated ? item.slice(1) : item;
    if (!matchPattern(s, pattern)) continue;
    if (negated) return -1;
    positive = 1;
  }
  return positive;
}
