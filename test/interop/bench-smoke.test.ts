/**
 * The benchmark (bench/run.ts) in its tiny mode: proves that it starts both agents, drives
 * every scenario, prints the one table with both columns, writes its JSON and leaves no
 * agent or temp dir behind. It asserts NO timing and NO ratio: the numbers of a tiny run on
 * a busy test machine mean nothing.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { requirePeer } from '../helpers/peers';
import { removeDir, run, tempDir } from '../helpers/proc';

const RUN_JS = resolve(__dirname, '../../bench/run.js');
/** Generous: a tiny run takes a few seconds, but `npm test` runs files two at a time. */
const BENCH_TIMEOUT_MS = 120_000;

/** PIDs of live processes whose command line mentions `text` (the bench's private TMPDIR). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (cmdline.includes(text) && state !== 'Z') pids.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

test('npm run bench works: --tiny prints the tables, policy on too', { timeout: BENCH_TIMEOUT_MS + 30_000 }, async (t) => {
  if (requirePeer(t, 'ssh-agent') === undefined) return;
  const tmp = await tempDir('bench-smoke-');
  t.after(() => removeDir(tmp));
  const jsonPath = join(tmp, 'bench.json');

  // run() spawns without a shell, bounds the time and SIGKILLs the bench by PID on expiry.
  const r = await run(process.execPath, [RUN_JS, '--tiny', '--json', jsonPath], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, TMPDIR: tmp },
    timeoutMs: BENCH_TIMEOUT_MS,
  });
  assert.equal(r.code, 0, `bench exited ${r.code} (signal ${r.signal})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr.slice(-4000)}`);

  // The one table: a header naming both agents, and a row per scenario with numbers for both.
  const lines = r.stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith('scenario'));
  assert.ok(start >= 0, `no table header in:\n${r.stdout}`);
  const end = lines.indexOf('', start);
  const mainTable = lines.slice(start, end < 0 ? undefined : end);
  const header = mainTable[0];
  const cols = header.split('|').map((c) => c.trim());
  assert.deepEqual(cols, ['scenario', 'OpenSSH ops/s', 'p50 ms', 'p99 ms', 'tsagent ops/s', 'p50 ms', 'p99 ms', 'ratio']);
  const rowFor = (prefix: string): string[] => {
    const line = mainTable.find((l) => l.startsWith(prefix));
    assert.ok(line, `no row "${prefix}" in:\n${r.stdout}`);
    return line.split('|').map((c) => c.trim());
  };
  const number = /^\d+(\.\d+)?$/;
  const loadRows = [
    'list (4 keys) c=1',
    'list (4 keys) c=16',
    'sign ed25519 c=1',
    'sign ed25519 c=16',
    'sign ECDSA P-256 c=1',
    'sign ECDSA P-256 c=16',
    'sign RSA-2048 sha2-512 c=1',
    'sign RSA-2048 sha2-512 c=16',
    'sign RSA-4096 sha2-512 c=1',
    'sign RSA-4096 sha2-512 c=16',
    'connect+list+close c=1',
    'connect+list+close c=16',
    'list (10 keys) c=1',
    'list (10 keys) c=16',
  ];
  for (const name of loadRows) {
    const c = rowFor(name);
    assert.equal(c.length, 8, `row "${name}" has ${c.length} columns`);
    for (const i of [1, 2, 3, 4, 5, 6]) assert.match(c[i], number, `row "${name}", column ${cols[i]}: "${c[i]}"`);
    assert.match(c[7], /^\d+(\.\d+)?x$/, `row "${name}" ratio "${c[7]}"`);
  }
  for (const name of ['startup to socket ready', 'RSS with 4 keys', 'RSS with 10 keys']) {
    const c = rowFor(name);
    assert.match(c[1], /^\d+(\.\d+)? (ms|MB)$/, `row "${name}" OpenSSH value "${c[1]}"`);
    assert.match(c[4], /^\d+(\.\d+)? (ms|MB)$/, `row "${name}" tsagent value "${c[4]}"`);
  }
  // The policy table (default --policy both): OpenSSH, policy off, audit only and policy on
  // (configured keys, rules, audit log, session-bound connections), each with its ratio.
  const pstart = lines.findIndex((l) => l.startsWith('policy (issues 12, 16)'));
  assert.ok(pstart >= 0, `no policy table in:\n${r.stdout}`);
  const pend = lines.indexOf('', pstart);
  const policyTable = lines.slice(pstart + 1, pend < 0 ? undefined : pend);
  assert.deepEqual(
    policyTable[0].split('|').map((c) => c.trim()),
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
  );
  for (const name of loadRows) {
    const line = policyTable.find((l) => l.startsWith(`${name} `));
    assert.ok(line, `no policy row "${name}"`);
    const c = line.split('|').map((x) => x.trim());
    for (const i of [1, 2, 4, 7, 8]) assert.match(c[i], number, `policy row "${name}", column ${i}: "${c[i]}"`);
    for (const i of [3, 5, 9]) assert.match(c[i], /^\d+(\.\d+)?x$/, `policy row "${name}" ratio "${c[i]}"`);
    for (const i of [6, 10]) assert.match(c[i], /^[+-]\d+(\.\d+)?%$/, `policy row "${name}" change "${c[i]}"`);
  }

  // The ceiling table: a row per key type.
  assert.match(r.stdout, /^ceiling: node:crypto/m);
  for (const k of ['sign ed25519', 'sign ECDSA P-256', 'sign RSA-2048 sha2-512', 'sign RSA-4096 sha2-512']) {
    const row = lines.filter((l) => new RegExp(`^${k} *\\|`).test(l));
    assert.equal(row.length, 1, `one ceiling row for ${k}`);
    const c = row[0].split('|').map((x) => x.trim());
    for (const i of [1, 2, 3]) assert.match(c[i], number, `ceiling ${k}: "${c[i]}"`);
  }

  // The raw results: every scenario measured for both agents.
  const raw = JSON.parse(readFileSync(jsonPath, 'utf8')) as { load: Record<string, Record<string, { ops: number }[]>> };
  assert.equal(Object.keys(raw.load).length, loadRows.length);
  for (const [id, byImpl] of Object.entries(raw.load)) {
    for (const impl of ['openssh', 'tsagent', 'tsagent-audit', 'tsagent-policy']) {
      assert.equal(byImpl[impl]?.length, 1, `${id}/${impl}: one round`);
      assert.ok(byImpl[impl][0].ops > 0, `${id}/${impl}: at least one reply`);
    }
  }

  // Nothing left behind: the agents' temp dirs (made under our TMPDIR) are gone, and no
  // process started with a socket in there is still running.
  assert.deepEqual(readdirSync(tmp).sort(), ['bench.json']);
  assert.deepEqual(processesMentioning(tmp), []);
});
