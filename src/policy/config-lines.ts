/**
 * Where a key sits in the TOML source, for error messages (POLICY.md §2: every error names
 * file, line and key). smol-toml reports positions only for syntax errors, so after parsing
 * a light scan of the lines maps `agent.offer`, `key[2]`, `rule[1].action`, … to the line
 * that wrote them. It reads headers (`[t]`, `[[t]]`) and `key =` lines, and skips the insides
 * of multi-line strings; a key it cannot place (inline tables, dotted keys) falls back to
 * its table's line.
 */

const ARRAY_HEADER = /^\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]/;
const TABLE_HEADER = /^\[\s*([A-Za-z0-9_.-]+)\s*\]/;
const KEY_LINE = /^([A-Za-z0-9_-]+|"[^"\\]*"|'[^']*')\s*[=.]/;

export class SourceLines {
  private readonly lines = new Map<string, number>();

  constructor(source: string) {
    const counters = new Map<string, number>();
    let table = '';
    let inMultiline: string | null = null;
    const text = source.split(/\r?\n/);
    for (let i = 0; i < text.length; i++) {
      const raw = text[i];
      const line = raw.trimStart();
      if (inMultiline !== null) {
        if (countOf(raw, inMultiline) % 2 === 1) inMultiline = null;
        continue;
      }
      const arr = ARRAY_HEADER.exec(line);
      if (arr !== null) {
        const n = (counters.get(arr[1]) ?? 0) + 1;
        counters.set(arr[1], n);
        table = `${arr[1]}[${n}]`;
        this.note(table, i + 1);
        continue;
      }
      const tab = TABLE_HEADER.exec(line);
      if (tab !== null) {
        table = tab[1]!;
        this.note(table, i + 1);
        continue;
      }
      const key = KEY_LINE.exec(line);
      if (key !== null) {
        const name = key[1].replace(/^["']|["']$/g, '');
        this.note(table === '' ? name : `${table}.${name}`, i + 1);
      }
      for (const q of ['"""', "'''"]) {
        if (countOf(raw, q) % 2 === 1) {
          inMultiline = q;
          break;
        }
      }
    }
  }

  private note(path: string, line: number): void {
    if (!this.lines.has(path)) this.lines.set(path, line);
  }

  /** The line of `path` (e.g. `rule[2].action`), else of its table, else null. */
  lineOf(path: string): number | null {
    let p = path;
    for (;;) {
      const hit = this.lines.get(p);
      if (hit !== undefined) return hit;
      const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
      if (cut <= 0) return null;
      p = p.slice(0, cut);
    }
  }
}

function countOf(s: string, sub: string): number {
  let n = 0;
  for (let i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length)) n++;
  return n;
}
