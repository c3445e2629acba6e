/**
 * Pattern lists as OpenSSH reads them (match.c match_pattern_list): each entry is a pattern
 * with `*` and `?`, or `!pattern`; a subject matches the list when some positive entry
 * matches and no negated entry does. Compiled once at config load so matching on every
 * signature only walks small arrays (POLICY.md §2: keys, processes, parents, purposes).
 */
import { matchPattern } from '../match';

export interface CompiledPattern {
  readonly negated: boolean;
  /** The pattern without its `!`. */
  readonly text: string;
  /** Contains `*` or `?`; otherwise compared as a plain string. */
  readonly wildcard: boolean;
}

export interface PatternList {
  /** As written in the file (for `tsagent keys` and messages). */
  readonly source: readonly string[];
  readonly items: readonly CompiledPattern[];
}

/** Why a pattern is refused, or undefined when it is fine. */
export function patternProblem(p: string): string | undefined {
  const body = p.startsWith('!') ? p.slice(1) : p;
  if (body.length === 0) return `empty pattern ${JSON.stringify(p)}`;
  if (body.startsWith('!')) return `pattern ${JSON.stringify(p)} has more than one "!"`;
  // Control characters, blanks and commas would make a pattern OpenSSH reads differently.
  if (/[\s,\p{Cc}]/u.test(body)) return `pattern ${JSON.stringify(p)} contains a blank, comma or control character`;
  if (body.length > 1024) return 'pattern longer than 1024 characters';
  return undefined;
}

export function compilePattern(p: string, lowercase: boolean): CompiledPattern {
  const negated = p.startsWith('!');
  const raw = negated ? p.slice(1) : p;
  const text = lowercase ? raw.toLowerCase() : raw;
  return { negated, text, wildcard: /[*?]/.test(text) };
}

/** Validates and compiles; returns a message on the first bad entry. */
export function compilePatternList(list: readonly string[], lowercase = false): PatternList | string {
  if (list.length === 0) return 'must list at least one pattern';
  const items: CompiledPattern[] = [];
  for (const p of list) {
    const problem = patternProblem(p);
    if (problem !== undefined) return problem;
    items.push(compilePattern(p, lowercase));
  }
  // OpenSSH: a list of only negations matches nothing; almost surely not what was meant.
  if (items.every((i) => i.negated))
    return 'only negated patterns: such a list matches nothing (add "*" to match everything else)';
  return { source: list, items };
}

export function matchOne(item: CompiledPattern, s: string): boolean {
  return item.wildcard ? matchPattern(s, item.text) : s === item.text;
}

/** match_pattern_list semantics over one subject. */
export function matchList(list: PatternList, s: string): boolean {
  let found = false;
  for (const item of list.items) {
    if (matchOne(item, s)) {
      if (item.negated) return false;
      found = true;
    }
  }
  return found;
}

/** Like matchList, but the subject is several strings that name the same thing (key name, comment, fingerprint). */
export function matchListAny(list: PatternList, a: string, b: string | null, c: string | null): boolean {
  let found = false;
  for (const item of list.items) {
    if (matchOne(item, a) || (b !== null && matchOne(item, b)) || (c !== null && matchOne(item, c))) {
      if (item.negated) return false;
      found = true;
    }
  }
  return found;
}
