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
