/**
 * Profiles tsagent in one policy mode under one bench scenario: starts the daemon with
 * `node --cpu-prof` and the mode's config (./policy.ts), adds the 4 bench keys, drives the
 * scenario (session-bound in mode `on`, as the bench does), stops the daemon (SIGTERM writes
 * the profile) and prints the profile's path and the load result as one JSON line.
 *
 *   node dist/bench/profile-policy.js --mode on|audit|off --scenario list|churn|sign-ed25519|… [--c 16]
 *        [--duration-ms 5000] --out DIR [--bin FILE] [--no-profile | --perf]
 *
 * Then `node dist/bench/cpuprofile-summary.js DIR/*.cpuprofile --top 25`. `--bin` runs another
 * tsagent launcher (a build to compare); `--no-profile` only measures (agent CPU per request
 * is the steady figure to compare builds by, run in turns). `--perf` takes a `perf record -e
 * cpu-clock -g` of the daemon (started with `--perf-basic-prof`, so JIT frames have names)
 * instead of a V8 profile: kernel and native time where the V8 profile charges it to the last
 * native call. Read it with `perf report -i DIR/perf.data --no-children --sort sym`.
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { publicBlobOfBody } from '../src/protocol/private-key';
import { KEY_KINDS, addKeys, generateBenchKeys, manyEd25519 } from './keys';
import type { KeyKind } from './keys';
import { listWorkload, runLoad, signWorkload } from './load';
import type { Workload } from './load';
import { CONFIG_KEYS, makeBinding, preparePolicy } from './policy';
import type { PolicyMode } from './policy';
import { installCleanupHandlers, runScript, startAgent } from './procs';

interface Options {
  readonly mode: PolicyMode;
  readonly scenario: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly out: string;
  readonly bin: string | undefined;
  readonly profile: boolean;
  readonly perf: boolean;
}

const USAGE = `usage: node dist/bench/profile-policy.js --mode on|audit|off --scenario NAME [--c N] [--duration-ms N] --out DIR [--bin FILE] [--no-profile | --perf]
  scenarios: list, churn, ${KEY_KINDS.map((k) => `sign-${k}`).join(', ')}
`;

function parse(argv: readonly string[]): Options {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const mode = get('mode') ?? 'on';
  if (mode !== 'on' && mode !== 'audit' && mode !== 'off') throw new Error('--mode needs on, audit or off');
  const scenario = get('scenario');
  const out = get('out');
  if (scenario === undefined || out === undefined) throw new Error('--scenario and --out are required');
  const concurrency = Number(get('c') ?? '16');
  const durationMs = Number(get('duration-ms') ?? '5000');
  if (!Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(durationMs) || durationMs < 1) {
    throw new Error('--c and --duration-ms need positive integers');
  }
  const bin = get('bin');
  const perf = argv.includes('--perf');
  return {
    mode,
    scenario,
    concurrency,
    durationMs,
    out: resolve(out),
    bin,
    profile: !perf && !argv.includes('--no-profile'),
    perf,
  };
}

async function main(o: Options): Promise<number> {
  installCleanupHandlers();
  mkdirSync(o.out, { recursive: true });
  const keys = await generateBenchKeys();
  const blobs = [...keys, ...manyEd25519(CONFIG_KEYS - keys.length)].map((k) => publicBlobOfBody(k.body));
  const binding = makeBinding();
  const agent = await startAgent('tsagent', '', {
    nodeArgs: o.profile ? ['--cpu-prof', `--cpu-prof-dir=${o.out}`] : o.perf ? ['--perf-basic-prof'] : [],
    ...(o.bin === undefined ? {} : { bin: resolve(o.bin) }),
    prepare: (dir) => preparePolicy(o.mode, dir, blobs, binding),
  });
  try {
    const { identities } = await addKeys(agent.socketPath, keys);
    let w: Workload;
    if (o.scenario === 'list' || o.scenario === 'churn') w = listWorkload(identities);
    else if (o.scenario.startsWith('sign-') && KEY_KINDS.includes(o.scenario.slice(5) as KeyKind)) {
      const k = keys.find((x) => x.kind === o.scenario.slice(5))!;
      const datas = Array.from({ length: 64 }, () => randomBytes(256));
      w = signWorkload(o.scenario, identities.find((i) => i.comment === k.comment)!.blob, k.flags, k.algorithm, datas);
    } else throw new Error(`unknown scenario ${o.scenario}`);
    const perf = o.perf ? startPerf(agent.pid, resolve(o.out, 'perf.data')) : undefined;
    const r = await runLoad(w, {
      socketPath: agent.socketPath,
      concurrency: o.concurrency,
      churn: o.scenario === 'churn',
      warmupMs: Math.min(1000, o.durationMs / 5),
      durationMs: o.durationMs,
      minOps: 1,
      maxDurationMs: o.durationMs,
      agentPid: agent.pid,
      ...(o.mode === 'on' ? { preamble: binding.frame } : {}),
    });
    await perf?.stop();
    await agent.stop();
    const profiles = readdirSync(o.out).filter((f) => f.endsWith('.cpuprofile'));
    process.stdout.write(`${JSON.stringify({ mode: o.mode, scenario: o.scenario, profiles, ...r })}\n`);
    return 0;
  } finally {
    await agent.stop();
  }
}

runScript('profile-policy', USAGE, parse, main);

/** `perf record` of one process until stop(): SIGINT, then at most 10 s for it to write its file. */
function startPerf(pid: number, file: string): { stop(): Promise<void> } {
  const child = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-g', '-p', String(pid), '-o', file], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.on('error', () => undefined);
  return {
    async stop() {
      if (child.pid === undefined) return;
      process.kill(child.pid, 'SIGINT');
      const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
      if (!done) process.kill(child.pid, 'SIGKILL');
    },
  };
}
