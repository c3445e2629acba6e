/**
 * The audit log written by the real daemon (issue 12, POLICY.md §6):
 * - a real `ssh` login through an ssh config alias with HostKeyAlias, plain and hashed
 *   known_hosts: the record names the host, the user, purpose `login`, the exe and argv of
 *   `ssh` and the rule that decided;
 * - malformed session-bind and sign data on a raw connection: `fail`/`other` records, and
 *   the agent keeps serving;
 * - `tsagent log --config FILE` reads the configured audit file.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AuditRecord } from '../../src/agent/ports';
import { TSAGENT_BIN, startAgentDaemon } from '../helpers/daemons';
import { generateKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, deferred, removeDir, run, runOk, tempDir, waitFor } from '../helpers/proc';
import { aliasSshConfig } from '../helpers/ssh-alias';
import { startSshd } from '../helpers/sshd';

const PEERS = ['ssh', 'sshd', 'ssh-add', 'ssh-keygen'] as const;

function records(path: string): AuditRecord[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditRecord);
}

for (const hashed of [false, true]) {
  test(
    `the daemon's audit record of an ssh login via HostKeyAlias, ${hashed ? 'hashed' : 'plain'} known_hosts`,
    { timeout: 120_000 },
    async (t) => {
      const bin = requirePeers(t, PEERS);
      if (bin === undefined) return;
      const dir = await tempDir('tsagent-auditd-');
      const defer = deferred(t);
      defer(() => removeDir(dir));
      const key = await generateKey(dir, 'ed25519', 'audited');
      const sshd = await startSshd({ authorizedKeys: [key.publicLine] }, t);
      const home = join(dir, 'home');
      mkdirSync(join(home, '.ssh'), { recursive: true });
      const kh = join(home, '.ssh', 'known_hosts');
      writeFileSync(kh, `box.test ${sshd.hostKeyPublicLine.split(/\s+/).slice(0, 2).join(' ')}\n`);
      if (hashed) await runOk(bin['ssh-keygen'], ['-H', '-f', kh], { env: cleanEnv() });
      const audit = join(dir, 'state', 'audit.jsonl');
      const config = join(dir, 'config.toml');
      // The rule's literal name is the candidate that reveals a hashed line (POLICY.md §1).
      writeFileSync(
        config,
        `[agent]\nknown-hosts = ["${kh}"]\n[audit]\nfile = "${audit}"\n[[rule]]\nhosts = ["box.test"]\naction = "allow"\n`,
      );
      const agent = await startAgentDaemon('tsagent', { args: ['--config', config] });
      defer(() => agent.stop());
      const env = cleanEnv({ SSH_AUTH_SOCK: agent.socketPath, HOME: home });
      await runOk(bin['ssh-add'], [key.privatePath], { env });
      const cfg = aliasSshConfig(sshd, home, 'gitbox', 'box.test', kh);
      const r = await run(bin.ssh, ['-F', cfg, 'gitbox', 'true'], { env, timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);

      let sign: AuditRecord | undefined;
      await waitFor(() => (sign = records(audit).find((x) => x.event === 'sign')) !== undefined, {
        what: 'the sign record',
        timeoutMs: 10_000,
      });
      const s = sign!;
      assert.equal(s.decision, 'allow');
      assert.equal(s.reason, 'rule 1');
      assert.equal(s.purpose, 'login');
      assert.equal(s.key?.fingerprint, key.fingerprint);
      assert.equal(s.process?.exe, realpathSync(bin.ssh));
      assert.deepEqual(s.process?.argv, [bin.ssh, '-F', cfg, 'gitbox', 'true']);
      assert.equal(s.destination?.host, 'box.test');
      assert.deepEqual(s.destination?.names, ['box.test']);
      assert.equal(s.destination?.user, sshd.user);
      assert.equal(s.destination?.forwarded, false);
      assert.match(s.destination?.hostKey ?? '', /^SHA256:/);
      const all = records(audit);
      assert.equal(all[0]?.event, 'config', 'the start is recorded first');
      assert.equal(all[0]?.reason, `loaded ${config}`);
      assert.ok(all.some((x) => x.event === 'add' && x.decision === 'allow'));
      const list = all.find((x) => x.event === 'list' && x.destination !== null);
      assert.deepEqual(list?.keys, [key.fingerprint], 'the bound list names what it offered');

      // tsagent log --config reads the configured file.
      const shown = await run(process.execPath, [TSAGENT_BIN, 'log', '--config', config, '--host', 'box.test', '--json'], {
        env,
      });
      assert.equal(shown.code, 0, shown.stderr);
      const lines = shown.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as AuditRecord);
      assert.ok(lines.some((x) => x.event === 'sign' && x.destination?.host === 'box.test'));
    },
  );
}

/** One request frame: uint32 length, type byte, body. */
function frame(type: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from([type]), ...parts]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function str(b: Buffer | string): Buffer {
  const v = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(v.length);
  return Buffer.concat([len, v]);
}

/** Sends frames one at a time on one connection; resolves with each reply's type byte. */
async function exchange(path: string, frames: readonly Buffer[]): Promise<number[]> {
  const sock = connect(path);
  const types: number[] = [];
  let buf = Buffer.alloc(0);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    for (const f of frames) {
      const got = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reply within 10 s')), 10_000);
        const onData = (chunk: Buffer): void => {
          buf = Buffer.concat([buf, chunk]);
          if (buf.length >= 5 && buf.length >= 4 + buf.readUInt32BE(0)) {
            types.push(buf[4]);
            buf = buf.subarray(4 + buf.readUInt32BE(0));
            clearTimeout(timer);
            sock.off('data', onData);
            resolve();
          }
        };
        sock.on('data', onData);
      });
      sock.write(f);
      await got;
    }
  } finally {
    sock.destroy();
  }
  return types;
}

test('malformed session-bind and sign data: fail/other records, and the agent keeps serving', { timeout: 60_000 }, async (t) => {
  const bin = requirePeers(t, ['ssh-add', 'ssh-keygen'] as const);
  if (bin === undefined) return;
  const dir = await tempDir('tsagent-auditbad-');
  const defer = deferred(t);
  defer(() => removeDir(dir));
  const key = await generateKey(dir, 'ed25519', 'target');
  const audit = join(dir, 'audit.jsonl');
  const config = join(dir, 'config.toml');
  writeFileSync(config, `[audit]\nfile = "${audit}"\n`);
  const agent = await startAgentDaemon('tsagent', { args: ['--config', config] });
  defer(() => agent.stop());
  const env = cleanEnv({ SSH_AUTH_SOCK: agent.socketPath, HOME: dir });
  await runOk(bin['ssh-add'], [key.privatePath], { env });

  const EXTENSION = 27;
  const SIGN = 13;
  const FAILURE = 5;
  const EXTENSION_FAILURE = 28;
  const SIGN_RESPONSE = 14;
  const replies = await exchange(agent.socketPath, [
    // session-bind whose host key is garbage and whose signature is missing.
    frame(EXTENSION, str('session-bind@openssh.com'), str(Buffer.from('not a key')), str(Buffer.alloc(3))),
    // A login-looking request cut short, and random bytes: both purpose "other".
    frame(SIGN, str(key.blob), str(Buffer.concat([str(Buffer.alloc(32, 7)), Buffer.from([50]), str('user')])), Buffer.alloc(4)),
    frame(SIGN, str(key.blob), str(Buffer.from([0xff, 0, 1, 2, 3])), Buffer.alloc(4)),
    // A key the agent does not hold.
    frame(SIGN, str(Buffer.from('no such key')), str(Buffer.from('data')), Buffer.alloc(4)),
  ]);
  assert.deepEqual(replies, [EXTENSION_FAILURE, SIGN_RESPONSE, SIGN_RESPONSE, FAILURE]);

  // Still serving.
  const listed = await run(bin['ssh-add'], ['-l'], { env });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /target/);

  let signs: AuditRecord[] = [];
  await waitFor(() => (signs = records(audit).filter((x) => x.event === 'sign')).length === 3, {
    what: 'three sign records',
    timeoutMs: 10_000,
  });
  assert.deepEqual(
    signs.map((s) => [s.decision, s.purpose]),
    [
      ['allow', 'other'],
      ['allow', 'other'],
      ['fail', 'other'],
    ],
  );
  assert.equal(signs[0].destination, null, 'a refused binding binds nothing');
});
