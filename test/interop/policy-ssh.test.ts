/**
 * The config's rules and list cap judged on real OpenSSH traffic (POLICY.md §2): `ssh` (which
 * binds the connection with session-bind before listing) against a test sshd, keys added with
 * `ssh-add`, `tsagent reload` in between. Unbound lists (`ssh-add -l`) always see every key.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TSAGENT_BIN, startAgentDaemon } from '../helpers/daemons';
import { generateKey } from '../helpers/keys';
import type { GeneratedKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, removeDir, run, tempDir } from '../helpers/proc';
import { startSshd } from '../helpers/sshd';

const PEERS = ['ssh', 'sshd', 'ssh-add', 'ssh-keygen'] as const;

/** The fingerprints `ssh -v` reports offering, in order. */
function offered(stderr: string, keys: readonly GeneratedKey[]): string[] {
  const out: string[] = [];
  for (const line of stderr.split('\n')) {
    if (!/Offering public key/.test(line)) continue;
    const k = keys.find((x) => line.includes(x.fingerprint));
    out.push(k === undefined ? '?' : k.comment);
  }
  return out;
}

test('rules and max-offered on ssh logins; reload keeps the old config on error', { timeout: 240_000 }, async (t) => {
  const bin = requirePeers(t, PEERS);
  if (bin === undefined) return;
  const dir = await tempDir('tsagent-polssh-');
  t.after(() => removeDir(dir));
  const keys = [
    await generateKey(dir, 'ed25519', 'first'),
    await generateKey(dir, 'ed25519', 'second'),
    await generateKey(dir, 'ed25519', 'third'),
  ];
  const [first, , third] = keys as [GeneratedKey, GeneratedKey, GeneratedKey];
  const config = join(dir, 'config.toml');
  // Rule 1 refuses logins with the first key; nothing else is said.
  writeFileSync(config, `[[rule]]\nkeys = ["${first.fingerprint}"]\npurposes = ["login"]\naction = "deny"\n`);
  const agent = await startAgentDaemon('tsagent', { args: ['--config', config] });
  t.after(() => agent.stop());
  const addEnv = cleanEnv({ SSH_AUTH_SOCK: agent.socketPath, HOME: dir });
  for (const k of keys) {
    const add = await run(bin['ssh-add'], [k.privatePath], { env: addEnv });
    assert.equal(add.code, 0, add.stderr);
  }
  const sshd = await startSshd({ authorizedKeys: [first.publicLine] }, t);
  const env = sshd.clientEnv(agent.socketPath);
  const login = () =>
    run(bin.ssh, sshd.sshArgs(['-v', '-o', 'IdentitiesOnly=no'], ['echo', 'logged-in']), { env, timeoutMs: 60_000 });
  const reload = () => run(process.execPath, [TSAGENT_BIN, 'reload'], { env: addEnv, timeoutMs: 60_000 });

  // The server would take the first key, but the rule refuses to sign with it.
  const denied = await login();
  assert.notEqual(denied.code, 0, denied.stdout);
  assert.match(denied.stderr, /signing failed for ED25519 "first" from agent: agent refused operation/);

  // A broken file: reload exits 1 naming file, line and key; the rule still holds.
  writeFileSync(config, `[[rule]]\nkeys = ["${first.fingerprint}"]\naction = "sometimes"\n`);
  const broken = await reload();
  assert.equal(broken.code, 1);
  assert.ok(broken.stderr.includes(`${config}:3: rule[1].action`), broken.stderr);
  assert.notEqual((await login()).code, 0);

  // Without the rule, the same login works.
  writeFileSync(config, '');
  assert.equal((await reload()).code, 0);
  const allowed = await login();
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal(allowed.stdout.trim(), 'logged-in');

  // max-offered caps what a bound list shows, so ssh offers only that many keys…
  await sshd.setAuthorizedKeys([third.publicLine]);
  writeFileSync(config, '[agent]\nmax-offered = 1\n');
  assert.equal((await reload()).code, 0);
  const capped = await login();
  assert.notEqual(capped.code, 0, capped.stdout);
  assert.deepEqual(offered(capped.stderr, keys), ['first']);
  // …while an unbound list (ssh-add -l) still sees every key.
  const listed = await run(bin['ssh-add'], ['-l'], { env: addEnv });
  assert.equal(listed.code, 0, listed.stderr);
  for (const k of keys) assert.ok(listed.stdout.includes(k.fingerprint), listed.stdout);

  writeFileSync(config, '[agent]\nmax-offered = 3\n');
  assert.equal((await reload()).code, 0);
  const uncapped = await login();
  assert.equal(uncapped.code, 0, uncapped.stderr);
  assert.deepEqual(offered(uncapped.stderr, keys), ['first', 'second', 'third']);
});

test(
  'a key per host: with 8 keys held, ssh offers the one registered for the HostKeyAlias first (MaxAuthTries 3)',
  { timeout: 240_000 },
  async (t) => {
    const bin = requirePeers(t, PEERS);
    if (bin === undefined) return;
    const dir = await tempDir('tsagent-perhost-');
    t.after(() => removeDir(dir));
    const keys: GeneratedKey[] = [];
    for (let i = 1; i <= 8; i++) keys.push(await generateKey(dir, 'ed25519', `key${i}`));
    const alphaKey = keys[6];
    const betaKey = keys[7];
    const alpha = await startSshd({ authorizedKeys: [alphaKey.publicLine], extraConfig: ['MaxAuthTries 3'] }, t);
    const beta = await startSshd({ authorizedKeys: [betaKey.publicLine], extraConfig: ['MaxAuthTries 3'] }, t);
    // The names alpha and beta, as the user's known_hosts proves them (hashed, as ssh-keygen -H leaves it).
    const kh = join(dir, 'known_hosts');
    const hostLine = (name: string, line: string): string => `${name} ${line.split(' ').slice(0, 2).join(' ')}\n`;
    writeFileSync(kh, hostLine('alpha', alpha.hostKeyPublicLine) + hostLine('beta', beta.hostKeyPublicLine));
    await run(bin['ssh-keygen'], ['-H', '-f', kh], { env: cleanEnv() });
    const config = join(dir, 'config.toml');
    const perHost = `[agent]\nknown-hosts = ["${kh}"]\n[[key]]\nfingerprint = "${alphaKey.fingerprint}"\nname = "alpha-key"\nhosts = ["alpha"]\n[[key]]\nfingerprint = "${betaKey.fingerprint}"\nhosts = ["beta"]\n`;
    writeFileSync(config, perHost);
    const agent = await startAgentDaemon('tsagent', { args: ['--config', config] });
    t.after(() => agent.stop());
    const addEnv = cleanEnv({ SSH_AUTH_SOCK: agent.socketPath, HOME: dir });
    for (const k of keys) assert.equal((await run(bin['ssh-add'], [k.privatePath], { env: addEnv })).code, 0);

    const login = (sshd: typeof alpha, alias: string) =>
      run(bin.ssh, sshd.sshArgs(['-v', '-o', `HostKeyAlias=${alias}`, '-o', `UserKnownHostsFile=${kh}`], ['echo', alias]), {
        env: sshd.clientEnv(agent.socketPath),
        timeoutMs: 60_000,
      });
    const a = await login(alpha, 'alpha');
    assert.equal(a.code, 0, `${a.stderr}\n${agent.stderr().slice(-2000)}`);
    assert.equal(a.stdout.trim(), 'alpha');
    assert.deepEqual(offered(a.stderr, keys), ['key7']);
    const b = await login(beta, 'beta');
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(offered(b.stderr, keys), ['key8']);
    // tsagent keys shows the settings the [[key]] table gives the ssh-added key.
    const keysJson = await run(process.execPath, [TSAGENT_BIN, 'keys', '--json'], { env: addEnv });
    const listed = JSON.parse(keysJson.stdout) as Array<{
      name: string | null;
      fingerprint: string;
      hosts: string[] | null;
      source: string;
    }>;
    const shown = listed.find((k) => k.fingerprint === alphaKey.fingerprint)!;
    assert.deepEqual([shown.name, shown.hosts, shown.source], ['alpha-key', ['alpha'], 'added']);
    // ssh-add -l (unbound) lists all 8.
    const all = await run(bin['ssh-add'], ['-l'], { env: addEnv });
    assert.equal(all.stdout.trim().split('\n').length, 8);

    // Without the config's hosts, OpenSSH order: six wrong keys first, and MaxAuthTries 3 refuses.
    writeFileSync(config, '');
    assert.equal((await run(process.execPath, [TSAGENT_BIN, 'reload'], { env: addEnv })).code, 0);
    const plain = await login(alpha, 'alpha');
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /Too many authentication failures/);
  },
);
