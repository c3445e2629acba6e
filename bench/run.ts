/**
 * `npm run bench`: OpenSSH's ssh-agent and tsagent side by side, driven over their sockets by
 * one load generator (./load.ts), with the same keys. Prints one table — ops/s, p50, p99
 * for each agent and the ratio tsagent / OpenSSH — and the in-process node:crypto ceiling.
 *
 *   node dist/bench/run.js [--tiny] [--rounds N] [--duration-ms N] [--json FILE] [--only TEXT] [--policy on|off|both]
 *
 * `--policy` (./policy.ts) adds tsagent started with a config: "audit only" and "policy on"
 * (20 configured keys, 10 rules, the audit log, connections bound with session-bind), shown
 * in a second table beside policy off and OpenSSH (issues 12 and 16).
 *
 * The machine is noisy, so every scenario runs once per round for each agent, the two agents
 * taking turns to go first, and the best round (highest ops/s) is kept. Progress goes to
 * stderr; the report alone goes to stdout. `--tiny` (used by `npm test`) proves the bench
 * works in a few seconds; its numbers mean nothing.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { measureCeiling } from './ceiling';
import type { CeilingResult } from './ceiling';
import { KEY_KINDS, addKeys, generateBenchKeys, manyEd25519 } from './keys';
import type { BenchKey, KeyKind } from './keys';
import { listWorkload, runLoad, signWorkload } from './load';
import type { LoadResult, Workload } from './load';
import { CONFIG_KEYS, KEYS_WITH_HOSTS, RULES, makeBinding, preparePolicy } from './policy';
import type { PolicyMode } from './policy';
import {
  IMPLS,
  benchSshAgent,
  killEverything,
  measureNodeBaseline,
  measureStartup,
  memoryKiB,
  opensshVersion,
  startAgent,
} from './procs';
import type { AgentProc, Impl, SpawnOptions } from './procs';
import { fmtMiB, fmtMs, fmtOps, fmtPct, fmtRatio, table } from './report';
import type { Align } from './report';
import type { Identity } from '../src/protocol/messages';
import { publicBlobOfBody } from '../src/protocol/private-key';

// ---------------------------------------------------------------------------------------
// options

export interface Options {
  readonly tiny: boolean;
  readonly rounds: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  /** Measure past durationMs (up to 3x) until this many replies. */
  readonly minOps: number;
  /** Keys in the big-keyring scenario. */
  readonly manyKeys: number;
  /** Startup samples per agent per round (best is kept). */
  readonly startupTries: number;
  /** Per key type and mode, for the node:crypto ceiling. */
  readonly ceilingMs: number;
  readonly json: string | undefined;
  /** Only scenarios whose id contains this text. */
  readonly only: string | undefined;
  /** Which tsagent configurations run (./policy.ts). */
  readonly policy: 'on' | 'off' | 'both';
}

/** The least time a scenario may take to record its minOps replies. */
const MIN_MAX_DURATION_MS = 10_000;

const USAGE = `usage: node dist/bench/run.js [--tiny] [--rounds N] [--duration-ms N] [--json FILE] [--only TEXT] [--policy on|off|both]
  --tiny          one round, very short runs, 10 keys instead of 1000 (proves the bench works)
  --rounds N      rounds per scenario and agent; the best is kept (default 3)
  --duration-ms N measured time per scenario, agent and round (default 2000)
  --json FILE     also write the raw results as JSON
  --only TEXT     only the load scenarios whose id contains TEXT (e.g. sign-rsa, c16)
  --policy MODE   off: tsagent with no rules and no audit log; on: also tsagent with only the
                  audit log, and with 20 configured keys, 10 rules, the audit log and
                  session-bound connections; both (default): all of them
`;

class UsageError extends Error {}

export function parseArgs(argv: readonly string[]): Options {
  let tiny = false;
  let rounds: number | undefined;
  let durationMs: number | undefined;
  let json: string | undefined;
  let only: string | undefined;
  let policy: Options['policy'] = 'both';
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min) throw new UsageError(`${flag} needs an integer >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] =
      a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--tiny':
        tiny = true;
        break;
      case '--rounds':
        rounds = num(flag, value(), 1);
        break;
      case '--duration-ms':
        durationMs = num(flag, value(), 1);
        break;
      case '--json':
        json = value();
        if (json === undefined || json === '') throw new UsageError('--json needs a file name');
        break;
      case '--only':
        only = value();
        if (only === undefined) throw new UsageError('--only needs a text');
        break;
      case '--policy': {
        const v = value();
        if (v !== 'on' && v !== 'off' && v !== 'both') throw new UsageError('--policy needs on, off or both');
        policy = v;
        break;
      }
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        throw new UsageError(`unknown argument ${a}`);
    }
  }
  const d = durationMs ?? (tiny ? 40 : 2000);
  return {
    tiny,
    rounds: rounds ?? (tiny ? 1 : 3),
    durationMs: d,
    warmupMs: tiny ? Math.min(10, d) : Math.max(20, Math.min(300, Math.round(d / 5))),
    minOps: tiny ? 1 : 200,
    manyKeys: tiny ? 10 : 1000,
    startupTries: tiny ? 1 : 5,
    ceilingMs: tiny ? 10 : Math.max(100, Math.min(1000, d / 2)),
    json,
    only,
    policy,
  };
}

// ---------------------------------------------------------------------------------------
// scenarios

type Pair = 'four' | 'many';

interface Fixture {
  readonly keys: readonly BenchKey[];
  readonly four: readonly Identity[];
  readonly many: readonly Identity[];
  readonly datas: readonly Buffer[];
}

interface LoadScenario {
  readonly id: string;
  readonly label: string;
  readonly pair: Pair;
  readonly concurrency: number;
  readonly churn: boolean;
  /** For sign scenarios: the key type (links the row to the ceiling). */
  readonly kind?: KeyKind;
  readonly workload: (f: Fixture) => Workload;
}

const KIND_LABEL: Record<KeyKind, string> = {
  ed25519: 'sign ed25519',
  'ecdsa-p256': 'sign ECDSA P-256',
  'rsa-2048': 'sign RSA-2048 sha2-512',
  'rsa-4096': 'sign RSA-4096 sha2-512',
};

function blobOf(f: Fixture, kind: KeyKind): Buffer {
  const k = f.keys.find((x) => x.kind === kind)!;
  const id = f.four.find((i) => i.comment === k.comment);
  if (id === undefined) throw new Error(`the agent does not list ${k.comment}`);
  return id.blob;
}

function scenarios(o: Options): LoadScenario[] {
  const out: LoadScenario[] = [];
  for (const c of [1, 16])
    out.push({
      id: `list-c${c}`,
      label: `list (4 keys) c=${c}`,
      pair: 'four',
      concurrency: c,
      churn: false,
      workload: (f) => listWorkload(f.four),
    });
  for (const kind of KEY_KINDS) {
    for (const c of [1, 16]) {
      out.push({
        id: `sign-${kind}-c${c}`,
        label: `${KIND_LABEL[kind]} c=${c}`,
        pair: 'four',
        concurrency: c,
        churn: false,
        kind,
        workload: (f) => {
          const k = f.keys.find((x) => x.kind === kind)!;
          return signWorkload(`sign ${kind}`, blobOf(f, kind), k.flags, k.algorithm, f.datas);
        },
      });
    }
  }
  for (const c of [1, 16]) {
    out.push({
      id: `churn-c${c}`,
      label: `connect+list+close c=${c}`,
      pair: 'four',
      concurrency: c,
      churn: true,
      workload: (f) => listWorkload(f.four),
    });
  }
  for (const c of [1, 16]) {
    out.push({
      id: `list${o.manyKeys}-c${c}`,
      label: `list (${o.manyKeys} keys) c=${c}`,
      pair: 'many',
      concurrency: c,
      churn: false,
      workload: (f) => listWorkload(f.many),
    });
  }
  return o.only === undefined ? out : out.filter((s) => s.id.includes(o.only!));
}

// ---------------------------------------------------------------------------------------
// columns: OpenSSH and tsagent in each policy mode

type Column = 'openssh' | 'tsagent' | 'tsagent-audit' | 'tsagent-policy';
const COLUMN_MODE: Record<Exclude<Column, 'openssh'>, PolicyMode> = {
  tsagent: 'off',
  'tsagent-audit': 'audit',
  'tsagent-policy': 'on',
};

function columnsFor(o: Options): Column[] {
  const out: Column[] = ['openssh'];
  if (o.policy !== 'on') out.push('tsagent');
  if (o.policy !== 'off') out.push('tsagent-audit', 'tsagent-policy');
  return out;
}

function emptyByColumn<T>(make: () => T): Record<Column, T> {
  return { openssh: make(), tsagent: make(), 'tsagent-audit': make(), 'tsagent-policy': make() };
}

// ---------------------------------------------------------------------------------------
// results

interface Results {
  readonly meta: Record<string, unknown>;
  /** scenario id → impl → one LoadResult per round (in round order). */
  readonly load: Record<string, Record<Column, (LoadResult & { round: number; first: boolean })[]>>;
  readonly startupMs: Record<Impl, number[]>;
  /** A bare `node -e 0`, spawn to exit, measured in turn with the agents' starts. */
  readonly nodeBaselineMs: number[];
  /** pair → column → per-round VmRSS/VmHWM after that round's load, in KiB. */
  readonly rssKiB: Record<Pair, Record<Column, { round: number; rss: number; hwm: number }[]>>;
  /** pair → column → VmRSS right after the keys were added, before any load. */
  readonly rssAfterAddKiB: Record<Pair, Record<Column, number>>;
  readonly addMs: Record<Pair, Record<Column, number>>;
  /** key kind → per-round ceiling. */
  readonly ceiling: Record<string, CeilingResult[]>;
}

function best(rs: readonly LoadResult[] | undefined): LoadResult | undefined {
  if (rs === undefined || rs.length === 0) return undefined;
  return rs.reduce((a, b) => (b.opsPerSec > a.opsPerSec ? b : a));
}

function bestCeiling(rs: readonly CeilingResult[] | undefined): CeilingResult | undefined {
  if (rs === undefined || rs.length === 0) return undefined;
  return {
    kind: rs[0].kind,
    syncOpsPerSec: Math.max(...rs.map((r) => r.syncOpsPerSec)),
    callback1OpsPerSec: Math.max(...rs.map((r) => r.callback1OpsPerSec)),
    callback16OpsPerSec: Math.max(...rs.map((r) => r.callback16OpsPerSec)),
  };
}

// ---------------------------------------------------------------------------------------
// the run

function log(s: string): void {
  process.stderr.write(`${s}\n`);
}

function cpuModel(): string {
  const c = cpus();
  return `${c.length} x ${c[0]?.model ?? 'unknown CPU'}`;
}

async function main(o: Options): Promise<number> {
  const sshAgent = benchSshAgent('bench');
  if (sshAgent === undefined) return 2;
  const t0 = Date.now();
  const plan = scenarios(o);
  const results: Results = {
    meta: {
      date: new Date().toISOString(),
      machine: cpuModel(),
      memoryMiB: Math.round(totalmem() / 2 ** 20),
      node: process.version,
      openssh: await opensshVersion(),
      uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
      loadavgStart: loadavg()[0],
      options: o,
    },
    load: {},
    startupMs: { openssh: [], tsagent: [] },
    nodeBaselineMs: [],
    rssKiB: { four: emptyByColumn(() => []), many: emptyByColumn(() => []) },
    rssAfterAddKiB: { four: emptyByColumn(() => NaN), many: emptyByColumn(() => NaN) },
    addMs: { four: emptyByColumn(() => NaN), many: emptyByColumn(() => NaN) },
    ceiling: {},
  };

  const agents: AgentProc[] = [];
  try {
    log(
      `bench: ${o.tiny ? 'tiny mode, ' : ''}${o.rounds} round(s), ${o.durationMs} ms per scenario and agent; ${results.meta.openssh as string}, node ${process.version}`,
    );
    // Keys (RSA-4096 takes a while: generate on the thread pool while the agents start).
    const keysP = generateBenchKeys();
    keysP.catch(() => undefined); // awaited below; not an unhandled rejection if startup fails first
    const manyBodies = manyEd25519(o.manyKeys);
    const columns = columnsFor(o);
    const binding = makeBinding();
    // The configured keys (policy on) are the bench keys and the big keyring's first ones,
    // padded with keys never added; their blobs are known once the keys exist.
    const keys = await keysP;
    const configBlobs = [
      ...keys.map((k) => publicBlobOfBody(k.body)),
      ...manyBodies.slice(0, CONFIG_KEYS).map((k) => publicBlobOfBody(k.body)),
    ];
    for (const extra of manyEd25519(Math.max(0, CONFIG_KEYS - configBlobs.length)))
      configBlobs.push(publicBlobOfBody(extra.body));
    const spawnOpts = (c: Column): SpawnOptions =>
      c === 'openssh' ? {} : { prepare: (dir) => preparePolicy(COLUMN_MODE[c], dir, configBlobs, binding) };
    const plannedAgents = (['four', 'many'] as const).flatMap((pair) => columns.map((c) => ({ pair, c })));
    const started = await Promise.allSettled(
      plannedAgents.map(({ c }) => startAgent(c === 'openssh' ? 'openssh' : 'tsagent', sshAgent, spawnOpts(c))),
    );
    for (const s of started) if (s.status === 'fulfilled') agents.push(s.value);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    const pairs: Record<Pair, Partial<Record<Column, AgentProc>>> = { four: {}, many: {} };
    plannedAgents.forEach(({ pair, c }, i) => (pairs[pair][c] = agents[i]));
    const listed: Record<Pair, Partial<Record<Column, Identity[]>>> = { four: {}, many: {} };
    for (const pair of ['four', 'many'] as const) {
      const bodies = pair === 'four' ? keys : manyBodies;
      for (const c of columns) {
        const a = pairs[pair][c]!;
        const { identities, addMs } = await addKeys(a.socketPath, bodies);
        listed[pair][c] = identities;
        results.addMs[pair][c] = addMs;
        results.rssAfterAddKiB[pair][c] = memoryKiB(a.pid).rss;
      }
      // Every agent must hold the same identities, in the same order.
      const x = listed[pair].openssh!;
      for (const c of columns) {
        const y = listed[pair][c]!;
        if (
          x.length !== bodies.length ||
          y.length !== x.length ||
          x.some((id, i) => !id.blob.equals(y[i].blob) || id.comment !== y[i].comment)
        ) {
          throw new Error(`the agents list different identities after the same adds (${c}: ${y.length} vs ${x.length})`);
        }
      }
    }
    const fixture: Fixture = {
      keys,
      four: listed.four.openssh!,
      many: listed.many.openssh!,
      // Different data for every request in turn; 256 bytes, about an SSH userauth request.
      datas: Array.from({ length: 64 }, () => randomBytes(256)),
    };
    const workloads = new Map(plan.map((s) => [s.id, s.workload(fixture)]));

    for (let round = 0; round < o.rounds; round++) {
      log(`round ${round + 1}/${o.rounds}`);
      // 1. The ceiling, while the agents are idle.
      for (const k of keys) {
        const c = await measureCeiling(k, fixture.datas, o.ceilingMs);
        (results.ceiling[k.kind] ??= []).push(c);
      }
      // 2. Startup to socket ready, the two agents interleaved.
      if (o.only === undefined) {
        for (let i = 0; i < o.startupTries; i++) {
          const order = (round + i) % 2 === 0 ? IMPLS : [...IMPLS].reverse();
          for (const impl of order) results.startupMs[impl].push(await measureStartup(impl, sshAgent));
          results.nodeBaselineMs.push(await measureNodeBaseline());
        }
      }
      // 3. The load scenarios, the agents taking turns to go first.
      for (const [si, s] of plan.entries()) {
        const shift = (round + si) % columns.length;
        const order: readonly Column[] = [...columns.slice(shift), ...columns.slice(0, shift)];
        for (const [pos, impl] of order.entries()) {
          const a = pairs[s.pair][impl]!;
          const r = await runLoad(workloads.get(s.id)!, {
            socketPath: a.socketPath,
            concurrency: s.concurrency,
            churn: s.churn,
            warmupMs: o.warmupMs,
            durationMs: o.durationMs,
            minOps: o.minOps,
            // Room for minOps replies behind the warm-up's queue: with --tiny's 40 ms on a loaded
            // machine, 16 queued RSA-4096 signatures alone outlast 3 × 40 ms.
            maxDurationMs: Math.max(3 * o.durationMs, MIN_MAX_DURATION_MS),
            agentPid: a.pid,
            // Policy on: every connection is bound as `ssh` binds it (session-bind@openssh.com).
            ...(impl === 'tsagent-policy' ? { preamble: binding.frame } : {}),
          });
          const byImpl = (results.load[s.id] ??= emptyByColumn(() => []));
          byImpl[impl].push({ ...r, round, first: pos === 0 });
          log(
            `  ${s.label.padEnd(30)} ${impl.padEnd(14)} ${fmtOps(r.opsPerSec).padStart(7)} ops/s  p50 ${fmtMs(r.p50Ms)} ms  p99 ${fmtMs(r.p99Ms)} ms`,
          );
          if (!a.alive()) throw new Error(`${impl} died during ${s.id}\n${a.stderr()}`);
        }
      }
      // 4. Memory after the round's load.
      for (const pair of ['four', 'many'] as const) {
        for (const c of columns) results.rssKiB[pair][c].push({ round, ...memoryKiB(pairs[pair][c]!.pid) });
      }
    }
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    killEverything();
  }

  results.meta.loadavgEnd = loadavg()[0];
  const out = render(o, plan, results, (Date.now() - t0) / 1000);
  process.stdout.write(out);
  if (o.json !== undefined) {
    writeFileSync(o.json, `${JSON.stringify({ ...results, best: bestOf(plan, results) }, null, 1)}\n`);
    log(`bench: raw results written to ${o.json}`);
  }
  return 0;
}

function bestOf(plan: readonly LoadScenario[], r: Results): Record<string, unknown> {
  const load: Record<string, unknown> = {};
  for (const s of plan) {
    const o = best(r.load[s.id]?.openssh);
    const t = best(r.load[s.id]?.tsagent);
    load[s.id] = { label: s.label, openssh: o, tsagent: t, ratio: o && t ? t.opsPerSec / o.opsPerSec : undefined };
  }
  const ceiling: Record<string, unknown> = {};
  for (const k of KEY_KINDS) ceiling[k] = bestCeiling(r.ceiling[k]);
  return { load, ceiling };
}

/** Column alignment of every table here: a label, then right-aligned numbers. */
function labelThenNumbers(columns: number): Align[] {
  return ['l', ...Array.from({ length: columns - 1 }, (): Align => 'r')];
}

function render(o: Options, plan: readonly LoadScenario[], r: Results, seconds: number): string {
  const lines: string[] = [];
  const m = r.meta;
  lines.push('');
  lines.push(`tsagent vs OpenSSH ssh-agent — ${m.date as string}`);
  lines.push(`machine: ${m.machine as string}, ${m.memoryMiB as number} MiB; node ${m.node as string}; ${m.openssh as string}`);
  lines.push(
    `1-min load average at start / end: ${(m.loadavgStart as number).toFixed(2)} / ${(m.loadavgEnd as number).toFixed(2)}` +
      ` (other processes compete for the ${cpus().length} CPUs: the higher, the noisier)`,
  );
  lines.push(
    `${o.tiny ? 'TINY MODE (proves the bench runs; numbers are meaningless); ' : ''}best of ${o.rounds} round(s), ` +
      `${o.durationMs} ms measured (+${o.warmupMs} ms warm-up) per scenario, agent and round; closed loop, 1 request in flight per connection`,
  );
  lines.push('');

  const rows: string[][] = [];
  for (const s of plan) {
    const os = best(r.load[s.id]?.openssh);
    const ts = best(r.load[s.id]?.tsagent);
    rows.push([
      s.label,
      fmtOps(os?.opsPerSec),
      fmtMs(os?.p50Ms),
      fmtMs(os?.p99Ms),
      fmtOps(ts?.opsPerSec),
      fmtMs(ts?.p50Ms),
      fmtMs(ts?.p99Ms),
      fmtRatio(os && ts ? ts.opsPerSec / os.opsPerSec : undefined),
    ]);
  }
  if (r.startupMs.openssh.length > 0) {
    const so = Math.min(...r.startupMs.openssh);
    const st = Math.min(...r.startupMs.tsagent);
    rows.push([
      `startup to socket ready, ms (best of ${r.startupMs.openssh.length})`,
      `${fmtMs(so)} ms`,
      '',
      '',
      `${fmtMs(st)} ms`,
      '',
      '',
      `${fmtRatio(st / so)} *`,
    ]);
    // The floor under any Node program's start, measured in turn with the agents (issue 16).
    rows.push([
      `  bare node -e 0 to exit, ms (best of ${r.nodeBaselineMs.length})`,
      '',
      '',
      '',
      `${fmtMs(Math.min(...r.nodeBaselineMs))} ms`,
      '',
      '',
      '',
    ]);
  }
  for (const pair of ['four', 'many'] as const) {
    const n = pair === 'four' ? 4 : o.manyKeys;
    const ro = Math.min(...r.rssKiB[pair].openssh.map((x) => x.rss));
    const rt = Math.min(...r.rssKiB[pair].tsagent.map((x) => x.rss));
    rows.push([`RSS with ${n} keys, after load`, fmtMiB(ro), '', '', fmtMiB(rt), '', '', `${fmtRatio(rt / ro)} *`]);
  }
  lines.push(
    table(
      ['scenario', 'OpenSSH ops/s', 'p50 ms', 'p99 ms', 'tsagent ops/s', 'p50 ms', 'p99 ms', 'ratio'],
      rows,
      labelThenNumbers(8),
    ),
  );
  lines.push('ratio = tsagent / OpenSSH ops/s (higher is better); * = tsagent / OpenSSH time or memory (lower is better)');
  lines.push('');
  if (o.policy !== 'off') lines.push(...renderPolicy(plan, r));

  // The ceiling.
  const crow: string[][] = [];
  for (const k of KEY_KINDS) {
    const c = bestCeiling(r.ceiling[k]);
    if (c === undefined) continue;
    const t1 = best(r.load[`sign-${k}-c1`]?.tsagent);
    const t16 = best(r.load[`sign-${k}-c16`]?.tsagent);
    const cap1 = Math.max(c.syncOpsPerSec, c.callback1OpsPerSec);
    const cap16 = Math.max(c.syncOpsPerSec, c.callback16OpsPerSec);
    crow.push([
      KIND_LABEL[k],
      fmtOps(c.syncOpsPerSec),
      fmtOps(c.callback1OpsPerSec),
      fmtOps(c.callback16OpsPerSec),
      fmtPct(t1 ? t1.opsPerSec / cap1 : undefined),
      fmtPct(t16 ? t16.opsPerSec / cap16 : undefined),
    ]);
  }
  lines.push(
    `ceiling: node:crypto in this process (same keys, 256-byte data), ops/s; UV_THREADPOOL_SIZE=${m.uvThreadpoolSize as string}`,
  );
  lines.push(
    table(
      ['key', 'sync loop', 'callback, 1 outstanding', 'callback, 16 outstanding', 'tsagent c=1 share', 'tsagent c=16 share'],
      crow,
      labelThenNumbers(6),
    ),
  );
  lines.push(
    'share = tsagent ops/s over the socket / the best in-process rate (c=1: max(sync, callback 1); c=16: max(sync, callback 16))',
  );
  lines.push('');

  // CPU per request: steadier than ops/s when other processes compete for the CPUs.
  const cpuRows: string[][] = [];
  for (const s of plan) {
    const os = best(r.load[s.id]?.openssh);
    const ts = best(r.load[s.id]?.tsagent);
    const us = (x: LoadResult | undefined): string => (x?.agentCpuUsPerOp === undefined ? '-' : x.agentCpuUsPerOp.toFixed(1));
    const sys = (x: LoadResult | undefined): string =>
      x?.agentSysMs === undefined || x.ops === 0 ? '-' : ((x.agentSysMs * 1000) / x.ops).toFixed(1);
    const ta = best(r.load[s.id]?.['tsagent-audit']);
    const tp = best(r.load[s.id]?.['tsagent-policy']);
    cpuRows.push([s.label, us(os), sys(os), us(ts), sys(ts), us(ta), us(tp)]);
  }
  lines.push('agent CPU per request in the best round, µs (user+sys, all threads, from /proc; 10 ms ticks)');
  lines.push(
    table(
      ['scenario', 'OpenSSH cpu', 'of it sys', 'tsagent cpu', 'of it sys', 'audit only cpu', 'policy on cpu'],
      cpuRows,
      labelThenNumbers(7),
    ),
  );
  lines.push('');
  lines.push(`bench took ${seconds.toFixed(1)} s`);
  lines.push('');
  return lines.join('\n');
}

/** Change of a ratio against the policy-off ratio (same OpenSSH), as a signed percentage. */
function fmtChange(v: number | undefined, off: number | undefined): string {
  if (v === undefined || off === undefined || !(off > 0)) return '-';
  const pct = (v / off - 1) * 100;
  return `${pct >= 0 ? '+' : ''}${pct.toFixed(1)}%`;
}

/** The policy table: OpenSSH, tsagent policy off, audit only and policy on, each tsagent column's ratio to OpenSSH. */
function renderPolicy(plan: readonly LoadScenario[], r: Results): string[] {
  const rows: string[][] = [];
  for (const s of plan) {
    const os = best(r.load[s.id]?.openssh)?.opsPerSec;
    const off = best(r.load[s.id]?.tsagent)?.opsPerSec;
    const au = best(r.load[s.id]?.['tsagent-audit'])?.opsPerSec;
    const on = best(r.load[s.id]?.['tsagent-policy']);
    const ratio = (t: number | undefined): number | undefined => (os && t ? t / os : undefined);
    rows.push([
      s.label,
      fmtOps(os),
      fmtOps(off),
      fmtRatio(ratio(off)),
      fmtOps(au),
      fmtRatio(ratio(au)),
      fmtChange(au, off),
      fmtOps(on?.opsPerSec),
      fmtMs(on?.p99Ms),
      fmtRatio(ratio(on?.opsPerSec)),
      fmtChange(on?.opsPerSec, off),
    ]);
  }
  return [
    `policy (issues 12, 16): tsagent with no rules and no audit log (off), with only the audit log (audit only), and with ` +
      `${CONFIG_KEYS} configured keys (${KEYS_WITH_HOSTS} with hosts), ${RULES} rules, the audit log and session-bound connections (policy on)`,
    table(
      [
        'scenario',
        'OpenSSH ops/s',
        'off ops/s',
        'off ratio',
        'audit only ops/s',
        'ratio',
        'vs off',
        'policy on ops/s',
        'p99 ms',
        'ratio',
        'vs off',
      ],
      rows,
      labelThenNumbers(11),
    ),
    'ratio = that tsagent column / OpenSSH ops/s; vs off = change of that ratio against policy off (same run, same OpenSSH)',
    '',
  ];
}

// ---------------------------------------------------------------------------------------

if (require.main === module) {
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`bench: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  main(opts).then(
    (code) => process.exit(code),
    (err: unknown) => {
      killEverything();
      process.stderr.write(`bench: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
