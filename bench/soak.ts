/**
 * Memory under use (issue 16): `node dist/bench/soak.js [--minutes M] [--slice-ms N] [--keys N] [--json FILE] [--bin FILE]`.
 *
 * Starts OpenSSH's agent and tsagent (as bench/run.ts does: -D on fresh 0700 sockets), adds
 * the 4 bench keys and `--keys` (1000) ed25519 keys to both, then:
 *  1. the full benchmark load: every scenario of `npm run bench` once, `--slice-ms` each,
 *     both agents — then VmRSS ("RSS with 1000 keys after the full load");
 *  2. a mixed soak for `--minutes` (5): the scenarios in turn plus an add/remove slice
 *     (50 more keys added, then removed), the agents alternating slice by slice, VmRSS of
 *     each after every slice. The first fifth is warm-up; growth = last sample - the sample
 *     at the end of the warm-up.
 * Only Unix sockets in temp dirs; every loop is bounded by the clock and stops by itself;
 * both agents are killed by PID at the end, on error and on SIGINT.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { KEY_KINDS, addKeys, generateBenchKeys, manyEd25519 } from './keys';
import { listWorkload, runLoad, signWorkload } from './load';
import type { Workload } from './load';
import { IMPLS, benchSshAgent, killEverything, memoryKiB, runScript, startAgent } from './procs';
import type { AgentProc, Impl } from './procs';
import { fmtMiB, fmtRatio, table } from './report';
import { AgentClient } from '../src/client/agent-client';
import { privateKeyBodyFromKeyObject } from '../src/keys/key-file';
import type { Identity } from '../src/protocol/messages';

interface Options {
  readonly minutes: number;
  readonly sliceMs: number;
  readonly keys: number;
  readonly json: string | undefined;
  /** Another tsagent launcher instead of bin/tsagent.js (to compare builds or flags). */
  readonly bin: string | undefined;
}

const USAGE = 'usage: node dist/bench/soak.js [--minutes M] [--slice-ms N] [--keys N] [--json FILE] [--bin FILE]\n';

function parseArgs(argv: readonly string[]): Options {
  let minutes = 5;
  let sliceMs = 2000;
  let keys = 1000;
  let json: string | undefined;
  let bin: string | undefined;
  const num = (v: string | undefined, min: number, flag: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--minutes') minutes = num(argv[++i], 0.05, a);
    else if (a === '--slice-ms') sliceMs = num(argv[++i], 50, a);
    else if (a === '--keys') keys = Math.round(num(argv[++i], 0, a));
    else if (a === '--json') json = argv[++i];
    else if (a === '--bin') bin = argv[++i];
    else throw new Error(`unknown argument ${a ?? ''}`);
  }
  return { minutes, sliceMs, keys, json, bin };
}

interface Slice {
  readonly label: string;
  readonly run: (a: AgentProc, ms: number) => Promise<void>;
}

function log(s: string): void {
  process.stderr.write(`${s}\n`);
}

/** Adds `n` fresh ed25519 keys on one connection, then removes them again. */
async function addRemove(socketPath: string, n: number): Promise<void> {
  const client = new AgentClient({ socketPath, timeoutMs: 60_000 });
  try {
    for (let i = 0; i < n; i++) {
      const { privateKey } = generateKeyPairSync('ed25519');
      await client.add({ key: privateKeyBodyFromKeyObject(privateKey), comment: `soak-${i}` });
    }
    for (const id of await client.list()) if (id.comment.startsWith('soak-')) await client.remove(id.blob);
  } finally {
    client.close();
  }
}

function slices(identities: readonly Identity[], keys: Awaited<ReturnType<typeof generateBenchKeys>>): Slice[] {
  const datas = Array.from({ length: 64 }, () => randomBytes(256));
  const load =
    (w: Workload, concurrency: number, churn = false) =>
    async (a: AgentProc, ms: number): Promise<void> => {
      await runLoad(w, {
        socketPath: a.socketPath,
        concurrency,
        churn,
        warmupMs: 0,
        durationMs: ms,
        minOps: 1,
        maxDurationMs: 3 * ms,
      });
    };
  const out: Slice[] = [];
  for (const c of [1, 16]) out.push({ label: `list (${identities.length} keys) c=${c}`, run: load(listWorkload(identities), c) });
  for (const kind of KEY_KINDS) {
    const k = keys.find((x) => x.kind === kind)!;
    const id = identities.find((i) => i.comment === k.comment)!;
    for (const c of [1, 16])
      out.push({
        label: `sign ${kind} c=${c}`,
        run: load(signWorkload(`sign ${kind}`, id.blob, k.flags, k.algorithm, datas), c),
      });
  }
  for (const c of [1, 16]) out.push({ label: `connect+list+close c=${c}`, run: load(listWorkload(identities), c, true) });
  return out;
}

const ADD_REMOVE: Slice = { label: 'add 50 keys, remove them', run: (a) => addRemove(a.socketPath, 50) };

async function main(o: Options): Promise<number> {
  const sshAgent = benchSshAgent('soak');
  if (sshAgent === undefined) return 2;
  const agents: AgentProc[] = [];
  const rss: Record<Impl, { t: number; slice: string; kib: number }[]> = { openssh: [], tsagent: [] };
  const t0 = Date.now();
  try {
    for (const impl of IMPLS) agents.push(await startAgent(impl, sshAgent, o.bin === undefined ? {} : { bin: o.bin }));
    const byImpl: Record<Impl, AgentProc> = { openssh: agents[0], tsagent: agents[1] };
    const keys = await generateBenchKeys();
    const bodies = [...keys, ...manyEd25519(o.keys)];
    let identities: Identity[] = [];
    for (const impl of IMPLS) identities = (await addKeys(byImpl[impl].socketPath, bodies)).identities;
    const afterAdd: Record<Impl, number> = {
      openssh: memoryKiB(byImpl.openssh.pid).rss,
      tsagent: memoryKiB(byImpl.tsagent.pid).rss,
    };
    const plan = slices(identities, keys);

    log(`soak: the full benchmark load, ${plan.length} scenarios x ${o.sliceMs} ms per agent`);
    for (const s of plan) for (const impl of IMPLS) await s.run(byImpl[impl], o.sliceMs);
    const afterLoad: Record<Impl, number> = {
      openssh: memoryKiB(byImpl.openssh.pid).rss,
      tsagent: memoryKiB(byImpl.tsagent.pid).rss,
    };

    const soakMs = o.minutes * 60_000;
    const warmupMs = soakMs / 5;
    const mixed = [...plan, ADD_REMOVE];
    log(`soak: mixed load for ${o.minutes} min (the first fifth is warm-up)`);
    const start = Date.now();
    let warm: Record<Impl, number> | undefined;
    for (let i = 0; Date.now() - start < soakMs; i++) {
      const s = mixed[i % mixed.length];
      for (const impl of i % 2 === 0 ? IMPLS : [...IMPLS].reverse()) {
        await s.run(byImpl[impl], o.sliceMs);
        if (!byImpl[impl].alive()) throw new Error(`${impl} died during ${s.label}\n${byImpl[impl].stderr()}`);
        rss[impl].push({ t: Date.now() - start, slice: s.label, kib: memoryKiB(byImpl[impl].pid).rss });
      }
      if (warm === undefined && Date.now() - start >= warmupMs)
        warm = { openssh: rss.openssh.at(-1)!.kib, tsagent: rss.tsagent.at(-1)!.kib };
    }
    warm ??= { openssh: rss.openssh[0].kib, tsagent: rss.tsagent[0].kib };
    const end: Record<Impl, number> = { openssh: rss.openssh.at(-1)!.kib, tsagent: rss.tsagent.at(-1)!.kib };
    const max = (impl: Impl): number => Math.max(...rss[impl].filter((x) => x.t >= warmupMs).map((x) => x.kib));
    const row = (label: string, f: (impl: Impl) => number, ratio = true): string[] => [
      label,
      fmtMiB(f('openssh')),
      fmtMiB(f('tsagent')),
      ratio ? `${fmtRatio(f('tsagent') / f('openssh'))} *` : '',
    ];
    process.stdout.write(
      `\nRSS under load, ${new Date().toISOString()}; node ${process.version}; ${identities.length} keys; ` +
        `1-min load average ${loadavg()[0].toFixed(2)}\n` +
        `full load: ${plan.length} scenarios x ${o.sliceMs} ms per agent; soak: ${o.minutes} min mixed (${mixed.length} slices in turn, ` +
        `agents alternating), warm-up ${(warmupMs / 60_000).toFixed(1)} min; ${rss.tsagent.length} samples per agent\n\n` +
        table(
          ['VmRSS', 'OpenSSH', 'tsagent', 'ratio'],
          [
            row('after adding the keys', (i) => afterAdd[i]),
            row('after the full benchmark load', (i) => afterLoad[i]),
            row('soak: end of warm-up', (i) => warm[i]),
            row('soak: end', (i) => end[i]),
            row('soak: max after warm-up', max),
            row('soak: growth (end - end of warm-up)', (i) => end[i] - warm[i], false),
          ],
          ['l', 'r', 'r', 'r'],
        ) +
        `\n* = tsagent / OpenSSH (lower is better); soak took ${((Date.now() - t0) / 1000).toFixed(0)} s in all\n`,
    );
    if (o.json !== undefined)
      writeFileSync(o.json, `${JSON.stringify({ options: o, afterAdd, afterLoad, warm, end, rss }, null, 1)}\n`);
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    killEverything();
  }
  return 0;
}

if (require.main === module) runScript('soak', USAGE, parseArgs, main);
