/**
 * Start-up only (issue 16): `node dist/bench/startup.js [--runs N] [--bin FILE] [--json FILE]`.
 *
 * In one run, taking turns: a bare `node -e 0` (spawn to exit: the floor under any Node
 * program), each agent in the foreground (`-D -a SOCK`: spawn to the first accepted connect,
 * polled every ~1 ms), and each agent's login path (`-s -a SOCK` in background mode, as
 * `eval "$(…)"` runs it: spawn to the command's exit, socket ready). Prints min and median
 * of each. `--bin` runs another tsagent launcher instead of bin/tsagent.js (to compare builds).
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { benchSshAgent, runScript, measureBackgroundStart, measureNodeBaseline, measureStartup, opensshVersion } from './procs';
import type { SpawnOptions } from './procs';
import { fmtMs, fmtRatio, table } from './report';

interface Options {
  readonly runs: number;
  readonly bin: string | undefined;
  readonly json: string | undefined;
}

const USAGE = 'usage: node dist/bench/startup.js [--runs N] [--bin FILE] [--json FILE]\n';

function parseArgs(argv: readonly string[]): Options {
  let runs = 15;
  let bin: string | undefined;
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') {
      runs = Number(argv[++i]);
      if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs needs an integer >= 1');
    } else if (a === '--bin') {
      bin = argv[++i];
    } else if (a === '--json') {
      json = argv[++i];
    } else {
      throw new Error(`unknown argument ${a ?? ''}`);
    }
  }
  return { runs, bin, json };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

type Row = 'node -e 0' | 'OpenSSH -D' | 'tsagent -D' | 'OpenSSH -s (background)' | 'tsagent -s (background)';

async function main(o: Options): Promise<number> {
  const sshAgent = benchSshAgent('bench');
  if (sshAgent === undefined) return 2;
  const spawnOpts: SpawnOptions = o.bin === undefined ? {} : { bin: o.bin };
  const samples: Record<Row, number[]> = {
    'node -e 0': [],
    'OpenSSH -D': [],
    'tsagent -D': [],
    'OpenSSH -s (background)': [],
    'tsagent -s (background)': [],
  };
  const steps: Array<[Row, () => Promise<number>]> = [
    ['node -e 0', measureNodeBaseline],
    ['OpenSSH -D', () => measureStartup('openssh', sshAgent)],
    ['tsagent -D', () => measureStartup('tsagent', sshAgent, spawnOpts)],
    ['OpenSSH -s (background)', () => measureBackgroundStart('openssh', sshAgent)],
    ['tsagent -s (background)', () => measureBackgroundStart('tsagent', sshAgent, spawnOpts)],
  ];
  const load0 = loadavg()[0];
  // One warm-up of each (page cache), then the runs, the order rotating every run.
  for (const [, f] of steps) await f();
  for (let i = 0; i < o.runs; i++) {
    for (let j = 0; j < steps.length; j++) {
      const [row, f] = steps[(i + j) % steps.length];
      samples[row].push(await f());
    }
  }
  const node = median(samples['node -e 0']);
  const rows = (Object.keys(samples) as Row[]).map((r) => {
    const ossh = r.startsWith('tsagent') ? median(samples[r.replace('tsagent', 'OpenSSH') as Row]) : undefined;
    return [
      r,
      fmtMs(Math.min(...samples[r])),
      fmtMs(median(samples[r])),
      r.startsWith('tsagent') ? fmtMs(median(samples[r]) - node) : '',
      ossh === undefined ? '' : `${fmtRatio(median(samples[r]) / ossh)}`,
    ];
  });
  process.stdout.write(
    `\nstartup to socket ready, ms — ${new Date().toISOString()}; node ${process.version}; ${await opensshVersion()}\n` +
      `${o.runs} runs each after one warm-up, taking turns; 1-min load average ${load0.toFixed(2)} / ${loadavg()[0].toFixed(2)}` +
      `${o.bin === undefined ? '' : `; tsagent launcher ${o.bin}`}\n\n` +
      table(['start', 'min ms', 'median ms', 'median - node -e 0', 'tsagent / OpenSSH (median)'], rows, [
        'l',
        'r',
        'r',
        'r',
        'r',
      ]) +
      '\n',
  );
  if (o.json !== undefined) writeFileSync(o.json, `${JSON.stringify({ runs: o.runs, bin: o.bin, samples }, null, 1)}\n`);
  return 0;
}

if (require.main === module) runScript('startup', USAGE, parseArgs, main);
