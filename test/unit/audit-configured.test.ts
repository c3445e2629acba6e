/**
 * The daemon's audit sink as `[audit]` configures it (POLICY.md §2, §6): no file until the
 * first record, `list = false`, `enabled = false`, reload swapping file and settings, the
 * batch written at the end of the event-loop turn without a flush, and `config` records.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfiguredAuditSink, configRecord } from '../../src/audit/configured-sink';
import { sampleRecord } from '../helpers/audit-records';
import { removeDir, tempDir } from '../helpers/proc';

const lines = (path: string): Array<{ event: string; reason: string }> =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; reason: string });

test('configured audit sink: lazy file, list filter, disable, swap, end-of-turn batch', async (t) => {
  const dir = await tempDir('tsagent-auditcfg-');
  t.after(() => removeDir(dir));
  const first = join(dir, 'a', 'audit.jsonl');
  const second = join(dir, 'b', 'audit.jsonl');
  const sink = new ConfiguredAuditSink({ enabled: true, file: first, maxSizeBytes: 1_000_000, list: false });
  assert.equal(existsSync(join(dir, 'a')), false, 'nothing opened before the first record');

  sink.record(configRecord('allow', 'loaded x'));
  sink.record(sampleRecord(new Date().toISOString(), { event: 'list', keys: [] }));
  sink.record(sampleRecord(new Date().toISOString()));
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.deepEqual(
    lines(first).map((r) => r.event),
    ['config', 'sign'],
    'written by the end of the tick, list records left out',
  );

  sink.swap({ enabled: true, file: second, maxSizeBytes: 1_000_000, list: true });
  sink.record(sampleRecord(new Date().toISOString(), { event: 'list', keys: [] }));
  sink.flush();
  assert.deepEqual(
    lines(second).map((r) => r.event),
    ['list'],
  );
  assert.equal(lines(first).length, 2);

  sink.swap({ enabled: false, file: second, maxSizeBytes: 1_000_000, list: true });
  sink.record(sampleRecord(new Date().toISOString()));
  sink.flush();
  assert.equal(lines(second).length, 1, 'disabled: nothing written');
  assert.equal(sink.path, undefined);

  sink.close();
  sink.swap({ enabled: true, file: first, maxSizeBytes: 1_000_000, list: true });
  sink.record(sampleRecord(new Date().toISOString()));
  sink.flush();
  assert.equal(lines(first).length, 2, 'closed: later records dropped');
});
