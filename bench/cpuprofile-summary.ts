/**
 * Summarizes a V8 .cpuprofile (from `node --cpu-prof`): self time per function, the biggest
 * first, with where it lives; then the same grouped by file (tsagent's own, node internals,
 * dependencies) and the special V8 nodes ((garbage collector), (program), (idle)).
 *
 *   node dist/bench/cpuprofile-summary.js FILE.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Short place: path from src/ or node_modules/, or node:internal…, with the line. */
function where(cf: CallFrame): string {
  if (cf.url === '') return '';
  let u = cf.url.replace(/^file:\/\//, '');
  const m = /\/(dist\/(?:src|bench)\/.*|node_modules\/.*)$/.exec(u);
  if (m) u = m[1]!;
  return `${u}:${cf.lineNumber + 1}`;
}

function group(cf: CallFrame): string {
  const u = cf.url;
  if (u === '') return cf.functionName.startsWith('(') ? cf.functionName : '(native / builtin)';
  if (u.startsWith('node:')) return `node:${u.slice(5).split('/').slice(0, 2).join('/')}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (nm) return `dep ${nm[1]}`;
  const own = /dist\/(src\/.*)$/.exec(u);
  if (own) return own[1];
  return u;
}

export function summarize(p: Profile, top: number): string {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the gap before sample i; attribute it to sample i's node.
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const total = p.endTime - p.startTime;
  let idle = 0;
  const fn = new Map<string, { us: number; name: string; where: string }>();
  const grp = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName === '(idle)') idle += us;
    const name = cf.functionName || '(anonymous)';
    const key = `${name}@${where(cf)}`;
    const e = fn.get(key) ?? { us: 0, name, where: where(cf) };
    e.us += us;
    fn.set(key, e);
    const g = group(cf);
    grp.set(g, (grp.get(g) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number, of: number): string => `${((100 * us) / of).toFixed(1).padStart(5)}%`;
  const lines: string[] = [];
  lines.push(`profile: ${(total / 1e6).toFixed(2)} s, ${p.samples.length} samples; busy (not idle) ${(busy / 1e6).toFixed(2)} s`);
  lines.push(`top ${top} functions by self time (% of busy time):`);
  for (const e of [...fn.values()]
    .filter((x) => x.name !== '(idle)')
    .sort((a, b) => b.us - a.us)
    .slice(0, top)) {
    lines.push(`  ${pct(e.us, busy)}  ${(e.us / 1000).toFixed(0).padStart(6)} ms  ${e.name}  ${e.where}`);
  }
  lines.push('self time by file / group (% of busy time):');
  for (const [g, us] of [...grp.entries()]
    .filter(([g]) => g !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    lines.push(`  ${pct(us, busy)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${g}`);
  }
  return lines.join('\n');
}

if (require.main === module) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/cpuprofile-summary.js FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const i = process.argv.indexOf('--top');
  const top = i > 0 ? Number(process.argv[i + 1]) : 25;
  process.stdout.write(`${summarize(JSON.parse(readFileSync(file, 'utf8')) as Profile, top)}\n`);
}
