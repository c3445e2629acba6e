/**
 * `tsagent log` as a user runs it (the real bin/tsagent.js in a child process): the aligned
 * table, --json, the filters, the default path from XDG_STATE_HOME, and -f following records
 * written by the audit sink while it runs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord } from '../../src/agent/ports';
import { AuditFileSink } from '../../src/audit/audit-file';
import { defaultAuditPath } from '../../src/audit/paths';
import { sampleRecord } from '../helpers/audit-records';
import { TSAGENT_BIN } from '../helpers/daemons';
import { cleanEnv, removeDir, run, stopChild, tempDir, waitFor } from '../helpers/proc';

function rec(i: number, over: Partial<AuditRecord> = {}): AuditRecord {
  return sampleRecord(new Date(Date.now() - (100 - i) * 60_000).toISOString(), { reason: 'default', ...over });
}

describe('tsagent log', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let path: string;

  before(async () => {
    dir = await tempDir('tsagent-logcmd-');
    env = cleanEnv({ HOME: dir, XDG_STATE_HOME: join(dir, 'state') });
    path = defaultAuditPath(env);
    const sink = new AuditFileSink({ path });
    sink.record(rec(1));
    sink.record(
      rec(2, {
        decision: 'deny',
        reason: 'rule 3',
        process: {
          pid: 9,
          uid: 1000,
          exe: '/usr/bin/ssh-keygen',
          argv: ['ssh-keygen', '-Y', 'sign'],
          unit: null,
          parents: ['/usr/bin/git'],
        },
        destination: null,
        purpose: 'sign:git',
      }),
    );
    sink.record({
      time: rec(99).time,
      event: 'list',
      decision: 'allow',
      reason: 'default',
      keys: ['SHA256:a'],
      process: null,
      destination: null,
    });
    sink.close();
  });
  after(() => removeDir(dir));

  const tsagent = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    run(process.execPath, [TSAGENT_BIN, 'log', ...args], { env });

  it('prints an aligned table, newest last, from the default path', async () => {
    const r = await tsagent([]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 4);
    assert.match(lines[0], /^TIME +EVENT +PROGRAM +DESTINATION +PURPOSE +KEY +DECISION +REASON$/);
    assert.match(lines[1], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +sign +ssh +git@github\.com +login +github +allow +default$/);
    assert.match(lines[2], / sign +ssh-keygen +- +sign:git +github +deny +rule 3$/);
    assert.match(lines[3], / list +- +- +- +1 key +allow +default$/);
    const at = lines[0].indexOf('DECISION');
    for (const l of lines.slice(1)) assert.match(l.slice(at), /^(allow|deny) /, 'the DECISION column lines up');
  });

  it('--json prints one record a line; filters narrow it', async () => {
    const all = await tsagent(['--json']);
    const records = all.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);
    assert.deepEqual(
      records.map((x) => x.event),
      ['sign', 'sign', 'list'],
    );
    const deny = await tsagent(['--json', '--decision', 'deny']);
    assert.deepEqual(
      deny.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as AuditRecord).purpose),
      ['sign:git'],
    );
    const byProc = await tsagent(['--json', '--process', 'ssh-keygen']);
    assert.equal(byProc.stdout.trim().split('\n').length, 1);
    const byHost = await tsagent(['--json', '--host', 'github.com', '--key', 'github']);
    assert.equal(byHost.stdout.trim().split('\n').length, 1);
    const since = await tsagent(['--json', '--since', '5m']);
    assert.deepEqual(
      since.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as AuditRecord).event),
      ['list'],
    );
    const other = await tsagent(['--file', join(dir, 'none.jsonl')]);
    assert.equal(other.code, 0);
    assert.equal(other.stdout.trim().split('\n').length, 1, 'a missing file is an empty log: just the header');
    const bad = await tsagent(['--since', 'someday']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--since/);
  });

  it('-f follows records appended while it runs', async () => {
    const child = spawn(process.execPath, [TSAGENT_BIN, 'log', '-f', '--interval', '50', '--process', 'ssh'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    try {
      await waitFor(() => out.split('\n').length >= 3, { timeoutMs: 10_000 });
      const sink = new AuditFileSink({ path });
      sink.record(rec(100, { reason: 'followed-ssh' }));
      sink.record(rec(100, { reason: 'filtered-out', process: null }));
      sink.flush();
      sink.close();
      await waitFor(() => out.includes('followed-ssh'), { timeoutMs: 10_000 });
      assert.ok(!out.includes('filtered-out'));
    } finally {
      await stopChild(child);
    }
  });
});
