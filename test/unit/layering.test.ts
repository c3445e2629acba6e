/**
 * The layering of src/ (README "Layout"), checked on every import: a module may import only
 * from its own folder or from a lower layer, client/ never from server/, and protocol/ and
 * keys/ touch no file, socket or process (they stay pure: bytes in, values out).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = resolve(__dirname, '../../../src');

/** Lower number = lower layer. Folders of one rank may not import each other. */
const RANK: Record<string, number> = {
  'errors.ts': 0,
  'match.ts': 0,
  'log.ts': 0,
  'bounded-map.ts': 0,
  native: 0,
  protocol: 1,
  keys: 2,
  stream: 2,
  context: 3,
  agent: 4,
  policy: 5,
  approvals: 5,
  audit: 5,
  pkcs11: 5,
  server: 6,
  client: 6,
  cli: 7,
  'index.ts': 8,
};

const PURE = new Set(['protocol', 'keys']);
const IO_MODULES = /^node:(fs|net|child_process|dgram|http|https|worker_threads)(\/|$)/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The top-level entry of src/ a path lies in: a folder name, or a file name at the top. */
function unitOf(path: string): string {
  return relative(SRC, path).split('/')[0];
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|require\(\s*|import\(\s*)'([^']+)'/g)) found.push(m[1]);
  return found;
}

test('every import in src/ points at the same layer or a lower one', () => {
  const problems: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = unitOf(file);
    const fromRank = RANK[from];
    assert.ok(fromRank !== undefined, `${relative(SRC, file)}: its folder needs a place in the layering`);
    for (const spec of imports(file)) {
      if (PURE.has(from) && IO_MODULES.test(spec)) problems.push(`${relative(SRC, file)} -> ${spec} (${from}/ stays pure)`);
      if (!spec.startsWith('.')) continue;
      const target = resolve(file, '..', spec);
      if (relative(SRC, target).startsWith('..')) continue; // package metadata (package.json)
      const to = unitOf(target);
      if (to === from) continue;
      const toRank = RANK[to.endsWith('.ts') ? to : to.replace(/\.js$/, '')] ?? RANK[`${to}.ts`];
      if (toRank === undefined) {
        problems.push(`${relative(SRC, file)} -> ${spec} (unknown layer ${to})`);
      } else if (toRank >= fromRank) {
        problems.push(`${relative(SRC, file)} -> ${spec} (${from} may not import ${to})`);
      }
    }
  }
  assert.deepEqual(problems, []);
});
