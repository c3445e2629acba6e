/**
 * Drives ONE already-running agent with one scenario of the bench — for profiling a daemon
 * you started yourself (e.g. `node --cpu-prof bin/tsagent.js start -D -a SOCK`):
 *
 *   node dist/bench/drive.js --socket SOCK --scenario sign-ed25519 [--c 16] [--duration-ms 10000] [--keys 1000] [--pid PID]
 *
 * Scenarios: list, sign-ed25519, sign-ecdsa-p256, sign-rsa-2048, sign-rsa-4096, churn
 * (connect+list+close). It first adds the bench keys (the 4 types, plus `--keys N` extra
 * ed25519 keys) to the agent, then prints one JSON line with the result; with `--pid` the
 * agent's CPU time per request (user + system, from /proc) is in it too.
 */
import { randomBytes } from 'node:crypto';
import { KEY_KINDS, addKeys, generateBenchKeys, manyEd25519 } from './keys';
import type { KeyKind } from './keys';
import { listWorkload, runLoad, signWorkload } from './load';
import type { Workload } from './load';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) {
    process.stderr.write(`drive: --${name} is required\n`);
    process.exit(2);
  }
  return v;
}

async function main(): Promise<void> {
  const socketPath = arg('socket');
  const scenario = arg('scenario');
  const concurrency = Number(arg('c', '16'));
  const durationMs = Number(arg('duration-ms', '10000'));
  const extra = Number(arg('keys', '0'));
  const pid = arg('pid', '');

  const keys = await generateBenchKeys();
  const bodies = [...keys, ...manyEd25519(extra)];
  const { identities } = await addKeys(socketPath, bodies);
  const datas = Array.from({ length: 64 }, () => randomBytes(256));

  let w: Workload;
  if (scenario === 'list' || scenario === 'churn') w = listWorkload(identities);
  else if (scenario.startsWith('sign-') && KEY_KINDS.includes(scenario.slice(5) as KeyKind)) {
    const k = keys.find((x) => x.kind === scenario.slice(5))!;
    const id = identities.find((i) => i.comment === k.comment)!;
    w = signWorkload(scenario, id.blob, k.flags, k.algorithm, datas);
  } else {
    process.stderr.write(`drive: unknown scenario ${scenario}\n`);
    process.exit(2);
  }
  const r = await runLoad(w, {
    socketPath,
    concurrency,
    churn: scenario === 'churn',
    warmupMs: Math.min(1000, durationMs / 5),
    durationMs,
    minOps: 1,
    maxDurationMs: durationMs,
    ...(pid === '' ? {} : { agentPid: Number(pid) }),
  });
  process.stdout.write(`${JSON.stringify({ scenario, concurrency, keys: identities.length, ...r })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`drive: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
