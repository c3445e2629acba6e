/**
 * Registered keys (POLICY.md §3) with real key files from ssh-keygen: listed from the public
 * half without asking, decrypted on first use with at most three passphrase answers, dropped
 * on lock; bad files (0644, missing, a directory, a FIFO, unsupported type) give an error
 * naming the file while the other keys still load.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { KeyFileError } from '../../src/errors';
import { askpassPassphrase } from '../../src/policy/askpass-passphrase';
import { parseConfig } from '../../src/policy/config';
import { RegisteredKeys } from '../../src/policy/registered-keys';
import type { PassphraseAsker } from '../../src/policy/registered-keys';
import { SshWriter } from '../../src/protocol/wire';
import { generateKey } from '../helpers/keys';
import { requirePeer } from '../helpers/peers';
import { removeDir, runOk, tempDir } from '../helpers/proc';

function specs(dir: string, body: string) {
  return parseConfig(body, join(dir, 'config.toml'), { HOME: dir }).keys;
}

function answers(...list: Array<string | null>): { ask: PassphraseAsker; prompts: string[]; given: Buffer[] } {
  const prompts: string[] = [];
  const given: Buffer[] = [];
  const ask: PassphraseAsker = async (prompt) => {
    prompts.push(prompt);
    const a = list.shift();
    if (a === undefined || a === null) return null;
    const b = Buffer.from(a);
    given.push(b);
    return b;
  };
  return { ask, prompts, given };
}

test('registered key files: listed at once, decrypted on first use, dropped on lock', async (t) => {
  if (requirePeer(t, 'ssh-keygen') === undefined) return;
  const dir = await tempDir('tsagent-reg-');
  t.after(() => removeDir(dir));
  const plain = await generateKey(dir, 'ed25519', 'plain@test', { name: 'plain' });
  const enc = await generateKey(dir, 'ecdsa-256', 'enc@test', { name: 'enc', passphrase: 'correct horse' });
  unlinkSync(enc.publicPath); // the public half must come from the OpenSSH file itself
  const rsa = await generateKey(dir, 'rsa-2048', 'rsa@test', { name: 'rsa' });
  const { keys, errors } = RegisteredKeys.load(
    specs(
      dir,
      `[[key]]\nfile = "~/plain"\nhosts = ["github.com"]\n[[key]]\nfile = "~/enc"\nname = "work"\nunlock-for = "8h"\nconfirm = true\n[[key]]\nfile = "~/rsa"\n`,
    ),
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(
    keys.list().map((k) => [k.name, k.fingerprint, k.type, k.comment]),
    [
      ['plain@test', plain.fingerprint, 'ssh-ed25519', 'plain@test'],
      ['work', enc.fingerprint, 'ecdsa-sha2-nistp256', ''],
      ['rsa@test', rsa.fingerprint, 'ssh-rsa', 'rsa@test'],
    ],
  );
  const work = keys.byName('work')!;
  assert.deepEqual(
    { ...work.view, blob: null },
    {
      blob: null,
      fingerprint: enc.fingerprint,
      comment: '',
      type: 'ecdsa-sha2-nistp256',
      name: 'work',
      source: 'config',
      confirm: true,
    },
  );
  assert.ok(work.blob.equals(enc.blob));
  assert.equal(keys.fileFingerprints().get(plain.privatePath), plain.fingerprint);
  assert.equal(keys.isLoaded('plain@test'), false);

  // An unencrypted file needs no passphrase.
  const none = answers();
  const held = await keys.unlock('plain@test', none.ask);
  assert.ok(held.publicBlob.equals(plain.blob));
  assert.deepEqual(none.prompts, []);
  assert.equal(keys.isLoaded('plain@test'), true);
  assert.equal(keys.lifetimeLeft('plain@test'), null); // unlock-for "0": until lock

  // Encrypted: two wrong answers, then the right one; the prompt names the key and the file.
  const a = answers('wrong', 'also wrong', 'correct horse');
  const [h1, h2] = await Promise.all([keys.unlock('work', a.ask), keys.unlock('work', a.ask)]);
  assert.equal(h1, h2, 'concurrent unlocks share one decryption');
  assert.equal(a.prompts.length, 3);
  assert.match(a.prompts[0], /"work"/);
  assert.ok(a.prompts[0].includes(enc.privatePath));
  assert.ok(
    a.given.every((b) => b.every((x) => x === 0)),
    'passphrases are zeroed after use',
  );
  const left = keys.lifetimeLeft('work')!;
  assert.ok(left > 8 * 3600 - 60 && left <= 8 * 3600, String(left));
  // Cached: no more questions.
  const again = answers();
  await keys.unlock('work', again.ask);
  assert.deepEqual(again.prompts, []);

  // A reload keeps decrypted halves of keys still registered from the same file.
  const reloaded = RegisteredKeys.load(
    specs(dir, `[[key]]\nfile = "~/enc"\nname = "work"\nunlock-for = "8h"\n[[key]]\nfile = "~/rsa"\n`),
  ).keys;
  reloaded.adoptFrom(keys);
  assert.equal(reloaded.isLoaded('work'), true);
  assert.equal(reloaded.isLoaded('rsa@test'), false);
  assert.equal(keys.isLoaded('work'), false);
  reloaded.dropAll();
  assert.equal(reloaded.isLoaded('work'), false);
  await keys.unlock('work', answers('correct horse').ask);

  // Lock drops every decrypted half.
  keys.dropAll();
  assert.equal(keys.isLoaded('work'), false);
  assert.equal(keys.isLoaded('plain@test'), false);

  // Three wrong answers fail the request; a cancelled prompt fails at once.
  const bad = answers('x', 'y', 'z', 'never asked');
  await assert.rejects(
    keys.unlock('work', bad.ask),
    (e: unknown) =>
      e instanceof KeyFileError && /wrong passphrase \(3 attempts\)/.test(e.message) && e.message.startsWith(enc.privatePath),
  );
  assert.equal(bad.prompts.length, 3);
  const cancel = answers(null);
  await assert.rejects(keys.unlock('work', cancel.ask), /no passphrase given/);
  assert.equal(keys.isLoaded('work'), false);

  // unlock-key: one passphrase, one attempt, zeroed.
  const wrong = Buffer.from('nope');
  await assert.rejects(keys.unlockWith('work', wrong), /: wrong passphrase$/);
  assert.ok(wrong.every((x) => x === 0));
  const right = Buffer.from('correct horse');
  await keys.unlockWith('work', right);
  assert.ok(right.every((x) => x === 0));
  assert.equal(keys.isLoaded('work'), true);
  keys.dropAll();

  // loadPrivate: the body for a keyring-held integration, nothing kept here.
  const body = await keys.loadPrivate('work', answers('correct horse').ask);
  assert.equal(body.type, 'ecdsa-sha2-nistp256');
  assert.equal(keys.isLoaded('work'), false);
  await assert.rejects(keys.unlock('nobody', none.ask), KeyFileError);
});

test('bad key files give an error naming the file; the other keys still load', async (t) => {
  const keygen = requirePeer(t, 'ssh-keygen');
  if (keygen === undefined) return;
  const dir = await tempDir('tsagent-regbad-');
  t.after(() => removeDir(dir));
  const good = await generateKey(dir, 'ed25519', 'good@test', { name: 'good' });
  const open = await generateKey(dir, 'ed25519', 'open@test', { name: 'open' });
  chmodSync(open.privatePath, 0o644);
  mkdirSync(join(dir, 'adir'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  // A PEM file, encrypted, without .pub: its public half cannot be known without the passphrase.
  const pem = await generateKey(dir, 'rsa-2048', 'pem@test', { name: 'pem', passphrase: 'pw-pem' });
  await runOk(keygen, ['-p', '-m', 'PEM', '-P', 'pw-pem', '-N', 'pw-pem', '-f', pem.privatePath]);
  unlinkSync(pem.publicPath);
  // A security-key type (sk-ssh-ed25519@openssh.com), which this agent cannot hold.
  const skBlob = new SshWriter()
    .string(Buffer.from('sk-ssh-ed25519@openssh.com'))
    .string(Buffer.alloc(32, 1))
    .string(Buffer.from('ssh:'))
    .finish();
  writeFileSync(join(dir, 'sk'), 'not a key\n', { mode: 0o600 });
  writeFileSync(join(dir, 'sk.pub'), `sk-ssh-ed25519@openssh.com ${skBlob.toString('base64')} sk@test\n`);
  const { keys, errors } = RegisteredKeys.load(
    specs(
      dir,
      ['open', 'missing', 'adir', 'fifo', 'pem', 'sk', 'good'].map((f) => `[[key]]\nfile = "~/${f}"\n`).join('') +
        `[[key]]\nfingerprint = "${good.fingerprint.replace(/.$/, 'A')}"\n`,
    ),
  );
  assert.deepEqual(
    keys.list().map((k) => k.name),
    ['good@test'],
  );
  const byFile = new Map(errors.map((e) => [e.file, e.message]));
  assert.match(byFile.get(open.privatePath)!, /permissions 0644 are too open/);
  assert.match(byFile.get(join(dir, 'missing'))!, /missing: no such file/);
  assert.match(byFile.get(join(dir, 'adir'))!, /is a directory/);
  assert.match(byFile.get(join(dir, 'fifo'))!, /is a FIFO/);
  assert.match(byFile.get(pem.privatePath)!, /\.pub is missing/);
  assert.match(byFile.get(join(dir, 'sk'))!, /unsupported key type sk-ssh-ed25519@openssh\.com/);
  assert.equal(errors.length, 6);
  for (const e of errors) assert.ok(e instanceof KeyFileError && e.message.startsWith(e.file));
  // With its .pub back, the PEM key registers and decrypts.
  writeFileSync(pem.publicPath, `${pem.publicLine}\n`);
  const again = RegisteredKeys.load(specs(dir, '[[key]]\nfile = "~/pem"\n'));
  assert.deepEqual(again.errors, []);
  const held = await again.keys.unlock('pem@test', answers('pw-pem').ask);
  assert.ok(held.publicBlob.equals(pem.blob));
  // A file made group-readable after registration is refused at use, too.
  chmodSync(pem.privatePath, 0o640);
  again.keys.dropAll();
  await assert.rejects(again.keys.unlock('pem@test', answers('pw-pem').ask), /too open/);
});

test('askpass asks for the passphrase as ssh does: prompt naming the key, SSH_ASKPASS_PROMPT unset', async (t) => {
  if (requirePeer(t, 'ssh-keygen') === undefined) return;
  const dir = await tempDir('tsagent-askpass-');
  t.after(() => removeDir(dir));
  const enc = await generateKey(dir, 'ed25519', 'ask@test', { name: 'ask', passphrase: 'via-askpass' });
  // A stand-in for the user's askpass program: records what it was given, answers on stdout.
  const script = join(dir, 'askpass.sh');
  writeFileSync(
    script,
    `#!/bin/sh\nprintf '%s|%s\\n' "$1" "\${SSH_ASKPASS_PROMPT-unset}" >> "${join(dir, 'asked')}"\nprintf 'via-askpass\\n'\n`,
    { mode: 0o700 },
  );
  const { keys } = RegisteredKeys.load(specs(dir, '[[key]]\nfile = "~/ask"\nname = "deploy"\n'));
  const ask = askpassPassphrase({
    PATH: process.env.PATH,
    SSH_ASKPASS: script,
    SSH_ASKPASS_REQUIRE: 'force',
    SSH_ASKPASS_PROMPT: 'confirm',
  });
  const held = await keys.unlock('deploy', ask);
  assert.ok(held.publicBlob.equals(enc.blob));
  const asked = readFileSync(join(dir, 'asked'), 'utf8');
  assert.ok(asked.startsWith(`Enter passphrase for key "deploy" (${enc.privatePath})`), asked);
  assert.match(asked, /\|unset\n$/);
  // No display and no force: askpass is not run, the request fails without a prompt.
  keys.dropAll();
  await assert.rejects(
    keys.unlock('deploy', askpassPassphrase({ PATH: process.env.PATH, SSH_ASKPASS: script })),
    /no passphrase given/,
  );
});
