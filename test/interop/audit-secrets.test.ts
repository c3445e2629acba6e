/**
 * No secret reaches the audit log or the debug log (issue 12, POLICY.md §6): the real daemon
 * with --config, -d (debug logging captured) and the audit log on; ed25519, RSA (with a
 * passphrase, asked by ssh-add through askpass) and ECDSA keys added with real `ssh-add`; a
 * passphrase-protected registered key unlocked with `tsagent unlock-key`; lock and unlock
 * with a lock password through `ssh-add -x` / `-X` and askpass; signatures with every key.
 * Then both logs are searched for every private key's secret parts (read with sshpk), every
 * passphrase and the lock password, raw, base64, base64url and hex.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import sshpk from 'sshpk';
import { TSAGENT_BIN, startAgentDaemon } from '../helpers/daemons';
import { generateKey } from '../helpers/keys';
import type { GeneratedKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, deferred, removeDir, run, runOk, tempDir, waitFor } from '../helpers/proc';

const PEERS = ['ssh-add', 'ssh-keygen'] as const;

/** The private parts of a key file, as sshpk reads them (leading zero bytes of mpints dropped). */
function secretParts(k: GeneratedKey): Buffer[] {
  const key = sshpk.parsePrivateKey(readFileSync(k.privatePath), 'ssh', k.passphrase === '' ? {} : { passphrase: k.passphrase });
  const names = new Set(['k', 'd', 'p', 'q', 'iqmp', 'dmodp', 'dmodq']);
  const out: Buffer[] = [];
  for (const part of key.parts) {
    if (!names.has(part.name)) continue;
    let b = Buffer.from(part.data);
    while (b.length > 0 && b[0] === 0) b = b.subarray(1);
    // ed25519's `k` is seed || public key in some encodings: the seed alone is the secret.
    if (part.name === 'k' && b.length === 64) out.push(b.subarray(0, 32));
    out.push(b);
  }
  assert.ok(out.length > 0, `secret parts of ${k.type}`);
  return out;
}

/** Every encoding a secret could leak in. */
function encodings(secret: Buffer): string[] {
  const forms = [
    secret.toString('base64'),
    secret.toString('base64').replace(/=+$/, ''),
    secret.toString('base64url'),
    secret.toString('hex'),
    secret.toString('hex').toUpperCase(),
  ];
  if (/^[\x20-\x7e]+$/.test(secret.toString('latin1'))) forms.push(secret.toString('latin1'));
  return forms;
}

function assertNoSecret(haystack: Buffer, secrets: ReadonlyMap<string, Buffer>, where: string): void {
  const text = haystack.toString('latin1');
  for (const [what, secret] of secrets) {
    assert.equal(haystack.indexOf(secret), -1, `${what} (raw bytes) found in ${where}`);
    for (const form of encodings(secret)) assert.ok(!text.includes(form), `${what} (${form.slice(0, 6)}…) found in ${where}`);
  }
}

test('no private key byte, passphrase or lock password in the audit log or the debug log', { timeout: 180_000 }, async (t) => {
  const bin = requirePeers(t, PEERS);
  if (bin === undefined) return;
  const dir = await tempDir('tsagent-secrets-');
  const defer = deferred(t);
  defer(() => removeDir(dir));
  const addPass = 'add-passphrase-Zq81';
  const regPass = 'registered-passphrase-Xv27';
  const lockPass = 'lock-password-Wn55';
  const ed = await generateKey(dir, 'ed25519', 'plain-ed');
  const rsa = await generateKey(dir, 'rsa-2048', 'encrypted-rsa', { passphrase: addPass });
  const ec = await generateKey(dir, 'ecdsa-256', 'plain-ec');
  const reg = await generateKey(dir, 'ed25519', 'registered-ed', { name: 'reg', passphrase: regPass });

  const audit = join(dir, 'audit.jsonl');
  const config = join(dir, 'config.toml');
  writeFileSync(config, `[audit]\nfile = "${audit}"\n[[key]]\nfile = "${reg.privatePath}"\nname = "reg"\n`);
  const agent = await startAgentDaemon('tsagent', { args: ['--config', config, '-d'] });
  defer(() => agent.stop());

  // askpass answers with what the file `answer` holds (the secret never in argv or env).
  const answer = join(dir, 'answer');
  const askpass = join(dir, 'askpass');
  writeFileSync(askpass, `#!/bin/sh\ncat '${answer}'\n`);
  chmodSync(askpass, 0o700);
  const env = cleanEnv({
    SSH_AUTH_SOCK: agent.socketPath,
    HOME: dir,
    SSH_ASKPASS: askpass,
    SSH_ASKPASS_REQUIRE: 'force',
    DISPLAY: ':0',
  });
  const say = (s: string): void => writeFileSync(answer, `${s}\n`, { mode: 0o600 });

  await runOk(bin['ssh-add'], [ed.privatePath, ec.privatePath], { env });
  say(addPass);
  await runOk(bin['ssh-add'], [rsa.privatePath], { env });
  const unlocked = await run(process.execPath, [TSAGENT_BIN, 'unlock-key', 'reg'], { env, input: `${regPass}\n` });
  assert.equal(unlocked.code, 0, unlocked.stderr);

  say(lockPass);
  await runOk(bin['ssh-add'], ['-x'], { env });
  assert.notEqual((await run(bin['ssh-add'], ['-l'], { env })).stdout.includes('plain-ed'), true, 'locked: nothing listed');
  await runOk(bin['ssh-add'], ['-X'], { env });

  const msg = join(dir, 'message');
  writeFileSync(msg, 'signed while the logs were watched\n');
  // The lock dropped the registered key's private half (POLICY.md §3): unlock it again, so
  // its passphrase passes through the agent once more, and sign with it too.
  const listed = (await runOk(bin['ssh-add'], ['-l'], { env })).stdout;
  assert.ok(listed.includes(reg.fingerprint), 'the registered key is listed');
  const again = await run(process.execPath, [TSAGENT_BIN, 'unlock-key', 'reg'], { env, input: `${regPass}\n` });
  assert.equal(again.code, 0, again.stderr);
  const signers = [ed, rsa, ec, reg];
  for (const k of signers) {
    await runOk(bin['ssh-keygen'], ['-Y', 'sign', '-n', 'file', '-f', k.publicPath, msg], { env });
  }
  let events: string[] = [];
  const read = (): string[] =>
    readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { event: string }).event);
  await waitFor(() => (events = read()).filter((e) => e === 'sign').length >= signers.length, {
    what: 'the sign records',
    timeoutMs: 10_000,
  });
  for (const e of ['config', 'add', 'lock', 'unlock', 'sign'])
    assert.ok(events.includes(e), `${e} recorded: ${events.join(',')}`);
  assert.match(agent.stderr(), /"level":20/, 'debug lines were captured');

  const secrets = new Map<string, Buffer>([
    ['the add passphrase', Buffer.from(addPass)],
    ['the registered key passphrase', Buffer.from(regPass)],
    ['the lock password', Buffer.from(lockPass)],
  ]);
  for (const k of [ed, rsa, ec, reg]) secretParts(k).forEach((b, i) => secrets.set(`${k.comment} private part ${i}`, b));
  assertNoSecret(readFileSync(audit), secrets, 'the audit log');
  assertNoSecret(Buffer.from(agent.stderr(), 'utf8'), secrets, 'the debug log');
});
