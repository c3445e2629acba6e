/**
 * The audit log (POLICY.md §6) on real files: permissions, one JSON object a line, rotation
 * by size, survival of a removed or unwritable file, no key material; and the reading side
 * of `tsagent log` (§5): rotated files, partial lines, filters, follow.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord } from '../../src/agent/ports';
import { AuditFileSink } from '../../src/audit/audit-file';
import { followAudit } from '../../src/audit/follow';
import { auditFilesOldestFirst, defaultAuditPath } from '../../src/audit/paths';
import { matchesFilter, parseRecordLine, parseRecords, parseSince, readAuditRecords } from '../../src/audit/query';
import { serializeRecord } from '../../src/audit/serialize';
import { escapeControls, formatTable } from '../../src/audit/table';
import { sampleRecord } from '../helpers/audit-records';
import { removeDir, tempDir, waitFor } from '../helpers/proc';

function rec(i: number, over: Partial<AuditRecord> = {}): AuditRecord {
  return sampleRecord(new Date(Date.UTC(2026, 11, 1, 12, 0, i)).toISOString(), over);
}

describe('audit log file', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('tsagent-audit-');
  });
  after(() => removeDir(dir));

  it('default path: $XDG_STATE_HOME/tsagent/audit.jsonl, else ~/.local/state', () => {
    assert.equal(defaultAuditPath({ HOME: '/h', XDG_STATE_HOME: '/s' }), '/s/tsagent/audit.jsonl');
    assert.equal(defaultAuditPath({ HOME: '/h' }), '/h/.local/state/tsagent/audit.jsonl');
    assert.equal(defaultAuditPath({ HOME: '/h', XDG_STATE_HOME: 'relative' }), '/h/.local/state/tsagent/audit.jsonl');
  });

  it('creates a 0700 directory and a 0600 file; one JSON object a line in the §6 shape; flush writes at once', () => {
    const path = defaultAuditPath({ HOME: dir, XDG_STATE_HOME: join(dir, 'state') });
    const sink = new AuditFileSink({ path });
    sink.record(rec(1));
    sink.flush();
    assert.equal(statSync(join(dir, 'state', 'tsagent')).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const text = readFileSync(path, 'utf8');
    assert.equal(
      text,
      '{"time":"2026-12-01T12:00:01.000Z","event":"sign","decision":"allow","reason":"rule 2",' +
        '"key":{"fingerprint":"SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","comment":"me@laptop","name":"github","type":"ssh-ed25519"},' +
        '"process":{"pid":4242,"uid":1000,"exe":"/usr/bin/ssh","argv":["ssh","gh"],"unit":null,"parents":["/usr/bin/git"]},' +
        '"destination":{"host":"github.com","names":["github.com"],"port":null,"hostKey":"SHA256:hk","user":"git","forwarded":false,"via":[]},' +
        '"purpose":"login","ms":0.4}\n',
    );
    // A list record carries keys instead of key; a null context stays null.
    sink.record({
      time: rec(2).time,
      event: 'list',
      decision: 'allow',
      reason: 'default',
      keys: ['SHA256:a', 'SHA256:b'],
      process: null,
      destination: null,
    });
    sink.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    assert.deepEqual(JSON.parse(lines[1]), {
      time: rec(2).time,
      event: 'list',
      decision: 'allow',
      reason: 'default',
      keys: ['SHA256:a', 'SHA256:b'],
      process: null,
      destination: null,
    });
  });

  it('an existing file with a loose mode is tightened to 0600', () => {
    const path = join(dir, 'loose', 'audit.jsonl');
    mkdirSync(join(dir, 'loose'));
    writeFileSync(path, '', { mode: 0o644 });
    const sink = new AuditFileSink({ path });
    sink.record(rec(1));
    sink.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it('records queued without flush are written on the next turn of the event loop', async () => {
    const path = join(dir, 'later', 'audit.jsonl');
    const sink = new AuditFileSink({ path });
    sink.record(rec(1));
    sink.record(rec(2));
    assert.equal(existsSync(path), false, 'nothing written synchronously by record()');
    await waitFor(() => existsSync(path) && readFileSync(path, 'utf8').split('\n').length === 3, { timeoutMs: 5000 });
    sink.close();
  });

  it('afterWrite: replies wait for their batch, which is one write for every record of the turn', async () => {
    const path = join(dir, 'held', 'audit.jsonl');
    const sink = new AuditFileSink({ path });
    assert.equal(
      sink.afterWrite(() => assert.fail('nothing queued: not held')),
      false,
    );
    const seen: number[] = [];
    const written = (): number => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').length - 1 : 0);
    sink.record(rec(1));
    assert.equal(
      sink.afterWrite(() => seen.push(written())),
      true,
    );
    // A second connection's record in the same turn joins the batch.
    sink.record(rec(2));
    sink.afterWrite(() => seen.push(written()));
    assert.deepEqual(seen, [], 'held until the batch is written');
    await waitFor(() => seen.length === 2, { timeoutMs: 5000 });
    assert.deepEqual(seen, [2, 2], 'both records on disk before either reply goes');
    sink.close();
  });

  it('large list records (1000 fingerprints) interleaved with small ones: every line whole, in order', () => {
    const path = join(dir, 'large', 'audit.jsonl');
    const sink = new AuditFileSink({ path });
    const many = Array.from({ length: 1000 }, (_, i) => `SHA256:${String(i).padStart(43, 'x')}`);
    const few = ['SHA256:one', 'SHA256:two'];
    const expected: AuditRecord[] = [];
    for (let i = 0; i < 40; i++) {
      const r = rec(i, i % 3 === 0 ? { event: 'list', keys: i % 2 === 0 ? many : few, key: undefined } : {});
      expected.push(r);
      sink.record(r);
      if (i % 7 === 6) sink.flush();
    }
    sink.close();
    const text = readFileSync(path, 'utf8');
    assert.equal(text, expected.map((r) => serializeRecord(r)).join(''));
    const parsed = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);
    assert.deepEqual(parsed[0].keys, many);
    assert.deepEqual(parsed[3].keys, few);
  });

  it('rotates by size to .1 … .5 and reads back newest last', () => {
    const path = join(dir, 'rot', 'audit.jsonl');
    const lineSize = serializeRecord(rec(0)).length;
    const sink = new AuditFileSink({ path, maxSize: lineSize * 3 });
    for (let i = 0; i < 30; i++) {
      sink.record(rec(i));
      sink.flush();
    }
    sink.close();
    const files = readdirSync(join(dir, 'rot')).sort();
    assert.deepEqual(files, ['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2', 'audit.jsonl.3', 'audit.jsonl.4', 'audit.jsonl.5']);
    for (const f of files) {
      assert.ok(statSync(join(dir, 'rot', f)).size <= lineSize * 3);
      assert.equal(statSync(join(dir, 'rot', f)).mode & 0o777, 0o600);
    }
    const back = readAuditRecords(path);
    assert.equal(back.length, 18, 'six files of three records');
    assert.deepEqual(
      back.map((r) => r.time),
      Array.from({ length: 18 }, (_, k) => rec(k + 12).time),
    );
  });

  it('a removed file is re-created; an unwritable path warns once and never throws; writing resumes', () => {
    const base = join(dir, 'robust');
    const path = join(base, 'audit.jsonl');
    const warnings: string[] = [];
    const sink = new AuditFileSink({ path, warn: (m) => warnings.push(m), pathCheckMs: 0 });
    sink.record(rec(1));
    sink.flush();
    unlinkSync(path);
    sink.record(rec(2));
    sink.flush();
    assert.deepEqual(
      readAuditRecords(path).map((r) => r.time),
      [rec(2).time],
      'the removed file was re-created',
    );
    // The directory replaced by a file: ENOTDIR on every attempt (works as root too).
    rmSync(base, { recursive: true });
    writeFileSync(base, 'not a directory');
    for (let i = 0; i < 3; i++) {
      sink.record(rec(3 + i));
      assert.doesNotThrow(() => sink.flush());
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /cannot be written/);
    unlinkSync(base);
    sink.record(rec(9));
    sink.flush();
    assert.deepEqual(
      readAuditRecords(path).map((r) => r.time),
      [rec(9).time],
    );
    sink.close();
    sink.record(rec(10));
    sink.flush();
    assert.equal(readAuditRecords(path).length, 1, 'a closed sink ignores records');
  });

  it('a damaged last line (a write cut short) is ended before the next record', () => {
    const path = join(dir, 'torn.jsonl');
    const torn = serializeRecord(rec(2)).slice(0, 30);
    writeFileSync(path, serializeRecord(rec(1)) + torn, { mode: 0o600 });
    const sink = new AuditFileSink({ path });
    sink.record(rec(3));
    sink.flush();
    sink.record(rec(4));
    sink.close();
    assert.equal(
      readFileSync(path, 'utf8'),
      serializeRecord(rec(1)) + `${torn}\n` + serializeRecord(rec(3)) + serializeRecord(rec(4)),
    );
    assert.deepEqual(
      readAuditRecords(path).map((r) => r.time),
      [rec(1).time, rec(3).time, rec(4).time],
    );
    // A whole last line is left as it is.
    const again = new AuditFileSink({ path });
    again.record(rec(5));
    again.close();
    assert.equal(readAuditRecords(path).length, 4);
    assert.doesNotMatch(readFileSync(path, 'utf8'), /\n\n/);
  });

  it('a FIFO at the path never blocks the agent, and a batch cut short leaves one damaged line', () => {
    const path = join(dir, 'fifo.jsonl');
    execFileSync('mkfifo', ['-m', '0600', path]);
    // In a child process with a time limit: a regression that blocks must fail, not hang.
    const script = `
      const { closeSync, constants, openSync, readSync } = require('node:fs');
      const { AuditFileSink } = require(${JSON.stringify(join(__dirname, '../../src/audit/audit-file.js'))});
      const path = ${JSON.stringify(path)};
      const warnings = [];
      const sink = new AuditFileSink({ path, warn: (m) => warnings.push(m), pathCheckMs: 0 });
      const rec = (i) => ({ time: new Date().toISOString(), event: 'list', decision: 'allow', reason: 'r' + i,
        keys: Array.from({ length: 16 }, (_, k) => 'SHA256:' + String(i * 100 + k).padStart(43, 'x')) });
      sink.record(rec(0));
      sink.flush(); // no reader: fails at once
      const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
      const buf = Buffer.alloc(1 << 20);
      let text = '';
      const drain = () => { for (;;) { let n = 0; try { n = readSync(reader, buf, 0, buf.length, null); } catch { n = 0; } if (n <= 0) return; text += buf.toString('utf8', 0, n); } };
      // Batches of 8 records (~7 KB, over PIPE_BUF): the pipe fills part way through one.
      for (let i = 1; i <= 160; i++) { sink.record(rec(i)); if (i % 8 === 0) sink.flush(); }
      drain();
      for (let i = 161; i <= 165; i++) { sink.record(rec(i)); sink.flush(); }
      drain();
      closeSync(reader);
      sink.close();
      process.stdout.write(JSON.stringify({ warnings: warnings.length, text }));
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { timeout: 30_000, encoding: 'utf8' })) as {
      warnings: number;
      text: string;
    };
    assert.equal(out.warnings, 2, 'no reader, then a full pipe: one warning each');
    const lines = out.text.split('\n').filter((l) => l !== '');
    const damaged = lines.filter((l) => parseRecordLine(l) === undefined);
    assert.ok(damaged.length <= 1, `at most the one cut line is damaged: ${damaged.length}`);
    for (const l of lines) assert.ok(l.split('"time"').length <= 2, 'never two records on one line');
    assert.match(lines[lines.length - 1], /"reason":"r165"/, 'writing resumed once the reader read');
  });

  it('a file moved away (logrotate) is followed by a new file at the path', () => {
    const path = join(dir, 'moved', 'audit.jsonl');
    const sink = new AuditFileSink({ path, pathCheckMs: 0 });
    sink.record(rec(1));
    sink.flush();
    renameSync(path, `${path}.old`);
    sink.record(rec(2));
    sink.close();
    assert.equal(readAuditRecords(path).length, 1);
    assert.equal(parseRecords(readFileSync(`${path}.old`, 'utf8')).length, 1);
  });

  it('never key material: only the contract fields are written, secret shapes are redacted', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const der = privateKey.export({ type: 'pkcs8', format: 'der' });
    const raw = der.subarray(der.length - 32);
    const opensshB64 = Buffer.concat([Buffer.from('openssh-key-v1\0'), raw, raw, raw, raw]).toString('base64');
    const sneaky = {
      ...rec(1),
      privateKey: raw,
      key: { fingerprint: 'SHA256:x', comment: pem, name: null, type: 'ssh-ed25519', blob: raw } as unknown as AuditRecord['key'],
      process: {
        pid: 1,
        uid: 1,
        exe: '/x',
        argv: ['prog', opensshB64, Buffer.concat([der, der, der]).toString('hex'), Buffer.concat([der, der]).toString('base64')],
        unit: null,
        parents: [],
      },
    } as unknown as AuditRecord;
    const line = serializeRecord(sneaky);
    for (const secret of [
      raw.toString('base64'),
      raw.toString('hex'),
      raw.toString('latin1'),
      der.toString('hex'),
      'PRIVATE KEY',
      'openssh-key-v1',
      opensshB64.slice(0, 40),
    ]) {
      assert.ok(!line.includes(secret), `no ${secret.slice(0, 20)}… in ${line}`);
    }
    assert.ok(!line.includes('privateKey') && !line.includes('"blob"'));
    const o = JSON.parse(line) as AuditRecord;
    assert.match(o.key?.comment ?? '', /^\[redacted\]/);
    assert.equal(o.process?.argv?.[0], 'prog');
  });

  it('costs (diagnostic, not asserted): µs per record, best of 20 rounds on a shared machine', (t) => {
    const path = join(dir, 'perf', 'audit.jsonl');
    const sink = new AuditFileSink({ path, maxSize: 1 << 30 });
    const r = rec(1);
    const best = new Map<string, number>();
    const measure = (name: string, n: number, fn: () => void): void => {
      const t0 = process.hrtime.bigint();
      fn();
      const us = Number(process.hrtime.bigint() - t0) / n / 1000;
      best.set(name, Math.min(best.get(name) ?? Infinity, us));
    };
    const n = 250;
    let written = 0;
    for (let round = 0; round < 20; round++) {
      measure('serialize (same connection)', n, () => {
        for (let i = 0; i < n; i++) serializeRecord(r);
      });
      measure('serialize (fresh objects)', n, () => {
        for (let i = 0; i < n; i++)
          serializeRecord({ ...r, process: { ...r.process! }, destination: { ...r.destination! }, key: { ...r.key! } });
      });
      measure('record() + flush() (one write each)', n, () => {
        for (let i = 0; i < n; i++) {
          sink.record(r);
          sink.flush();
        }
      });
      measure('in batches of 50', n, () => {
        for (let b = 0; b < n / 50; b++) {
          for (let i = 0; i < 50; i++) sink.record(r);
          sink.flush();
        }
      });
      written += 2 * n;
    }
    sink.close();
    t.diagnostic(`audit per record: ${[...best].map(([k, v]) => `${k} ${v.toFixed(2)} µs`).join(', ')}`);
    assert.equal(readAuditRecords(path).length, written);
  });
});

describe('reading the audit log', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('tsagent-auditq-');
  });
  after(() => removeDir(dir));

  it('skips a partial last line and damaged lines; reads rotated files first', () => {
    const path = join(dir, 'a.jsonl');
    writeFileSync(`${path}.2`, serializeRecord(rec(1)));
    writeFileSync(`${path}.1`, serializeRecord(rec(2)) + 'garbage\n{"time":1}\n');
    writeFileSync(path, serializeRecord(rec(3)) + serializeRecord(rec(4)).slice(0, 40));
    assert.deepEqual(auditFilesOldestFirst(path).slice(-3), [`${path}.2`, `${path}.1`, path]);
    assert.deepEqual(
      readAuditRecords(path).map((r) => r.time),
      [rec(1).time, rec(2).time, rec(3).time],
    );
  });

  it('filters: key, host, process, since, decision', () => {
    const now = Date.parse(rec(100).time);
    const records = [
      rec(1),
      rec(2, {
        decision: 'deny',
        reason: 'rule 1',
        key: { fingerprint: 'SHA256:other', comment: 'work', name: null, type: 'ssh-rsa' },
      }),
      rec(3, {
        process: { pid: 1, uid: 1, exe: '/usr/lib/git-core/ssh-keygen', argv: null, unit: null, parents: null },
        purpose: 'sign:git',
        destination: null,
      }),
      rec(4, {
        event: 'list',
        key: undefined,
        keys: ['SHA256:listed'],
        destination: {
          host: null,
          names: [],
          port: null,
          hostKey: 'SHA256:zzz',
          user: null,
          forwarded: true,
          via: ['bastion.example'],
        },
      }),
    ];
    const pick = (f: Parameters<typeof matchesFilter>[1]): number[] =>
      records.flatMap((r, i) => (matchesFilter(r, f) ? [i] : []));
    assert.deepEqual(pick({ key: 'github' }), [0, 2]);
    assert.deepEqual(pick({ key: 'work' }), [1]);
    assert.deepEqual(pick({ key: 'SHA256:other' }), [1]);
    assert.deepEqual(pick({ key: 'SHA256:listed' }), [3]);
    assert.deepEqual(pick({ host: 'GitHub.com' }), [0, 1]);
    assert.deepEqual(pick({ host: '*.example' }), [3], 'a via hop');
    assert.deepEqual(pick({ host: 'SHA256:zzz' }), [3]);
    assert.deepEqual(pick({ process: 'ssh' }), [0, 1, 3]);
    assert.deepEqual(pick({ process: 'ssh-*' }), [2]);
    assert.deepEqual(pick({ process: '/usr/lib/*' }), [2]);
    assert.deepEqual(pick({ decision: 'deny' }), [1]);
    assert.deepEqual(pick({ since: parseSince('97s', now) }), [2, 3]);
    assert.deepEqual(pick({ since: parseSince(rec(4).time) }), [3]);
    assert.equal(parseSince('1h30m', 10_000_000).getTime(), 10_000_000 - 5_400_000);
    assert.equal(parseSince('2d', 200_000_000).getTime(), 200_000_000 - 172_800_000);
    assert.throws(() => parseSince('yesterday'), /--since/);
  });

  it('the table: aligned columns, control characters escaped', () => {
    const out = formatTable([
      rec(1),
      rec(2, {
        process: { pid: 7, uid: 1, exe: '/usr/bin/evil\x1b[31m', argv: null, unit: null, parents: null },
        destination: {
          host: null,
          names: [],
          port: null,
          hostKey: 'SHA256:abcdefghijklmnopqrstuvwxyz',
          user: 'u',
          forwarded: true,
          via: ['bastion'],
        },
      }),
    ]);
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^TIME\s+EVENT\s+PROGRAM\s+DESTINATION\s+PURPOSE\s+KEY\s+DECISION\s+REASON$/);
    const col = (l: string, word: string): number => l.indexOf(word);
    assert.equal(col(lines[1], 'login'), col(lines[0], 'PURPOSE'));
    assert.equal(col(lines[2], 'login'), col(lines[0], 'PURPOSE'));
    assert.match(lines[1], /ssh\s+git@github\.com\s+login\s+github\s+allow\s+rule 2$/);
    assert.ok(lines[2].includes('evil\\x1b[31m') && !out.includes('\x1b'));
    assert.ok(lines[2].includes('u@SHA256:abcdefghijkl… via bastion'));
    assert.equal(escapeControls('a\u202eb\tc'), 'a\\u202eb\\x09c');
  });

  it('follow: appended records, a partial line completed later, a rotation', async () => {
    const path = join(dir, 'f.jsonl');
    writeFileSync(path, serializeRecord(rec(1)));
    const seen: string[] = [];
    const ac = new AbortController();
    const done = followAudit(path, (r) => seen.push(r.time), { intervalMs: 20, signal: ac.signal });
    try {
      const line2 = serializeRecord(rec(2));
      appendFileSync(path, line2.slice(0, 30));
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(seen, [], 'nothing before the newline; existing records are not repeated');
      appendFileSync(path, line2.slice(30) + serializeRecord(rec(3)));
      await waitFor(() => seen.length === 2, { timeoutMs: 5000 });
      // Rotation by the writer: the old file gets one more record, then a new file.
      const sink = new AuditFileSink({ path, maxSize: statSync(path).size + line2.length + 1 });
      sink.record(rec(4));
      sink.flush();
      sink.record(rec(5));
      sink.flush();
      sink.close();
      assert.ok(existsSync(`${path}.1`));
      await waitFor(() => seen.length === 4, { timeoutMs: 5000 });
      assert.deepEqual(seen, [rec(2).time, rec(3).time, rec(4).time, rec(5).time]);
    } finally {
      ac.abort();
      await done;
    }
  });
});
