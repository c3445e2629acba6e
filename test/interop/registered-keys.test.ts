/**
 * Registered keys (POLICY.md §3) end to end: the real daemon (`tsagent start -D --config`),
 * real `ssh-add`, real `ssh` logins to a test sshd, the real `tsagent` CLI, and git signing
 * rules (POLICY.md §2) with real `ssh-keygen -Y sign` and `git commit -S`. The encrypted
 * key's passphrase comes from an askpass script the agent runs (SSH_ASKPASS_REQUIRE=force),
 * or from `tsagent unlock-key` on stdin.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TSAGENT_BIN, startAgentDaemon } from '../helpers/daemons';
import type { AgentDaemon } from '../helpers/daemons';
import { generateKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, deferred, removeDir, run, tempDir, waitFor } from '../helpers/proc';
import { startSshd } from '../helpers/sshd';
import { signedCommitArgs } from '../helpers/git';

const PASSPHRASE = 'sesame-42';

function cli(args: string[], env: NodeJS.ProcessEnv, input?: string) {
  return run(process.execPath, [TSAGENT_BIN, ...args], { env, ...(input === undefined ? {} : { input }), timeoutMs: 60_000 });
}

/** An askpass program that answers with the contents of DIR/answer and logs each prompt to DIR/calls. */
function answeringAskpass(dir: string): { path: string; answer(text: string): void; calls(): string[] } {
  const path = join(dir, 'askpass-answer');
  writeFileSync(path, `#!/bin/sh\nd=$(dirname "$0")\nprintf '%s\\n' "$1" >> "$d/calls"\ncat "$d/answer"\n`);
  chmodSync(path, 0o700);
  writeFileSync(join(dir, 'calls'), '');
  return {
    path,
    answer: (text) => writeFileSync(join(dir, 'answer'), `${text}\n`),
    calls: () =>
      readFileSync(join(dir, 'calls'), 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
  };
}

interface KeyJson {
  name: string | null;
  fingerprint: string;
  source: string;
  loaded: boolean;
  lastUsed: string | null;
  lifetimeLeft: number | null;
}

test(
  'registered keys: listed across restarts, decrypted by askpass or unlock-key for ssh logins, dropped on lock and ssh-add -D',
  { timeout: 240_000 },
  async (t) => {
    const bin = requirePeers(t, ['ssh', 'sshd', 'ssh-add', 'ssh-keygen'] as const);
    if (bin === undefined) return;
    const dir = await tempDir('tsagent-regkeys-');
    const defer = deferred(t);
    defer(() => removeDir(dir));
    const askDir = join(dir, 'ask');
    mkdirSync(askDir, { mode: 0o700 });
    const askpass = answeringAskpass(askDir);
    const work = await generateKey(dir, 'ed25519', 'work@test', { name: 'work', passphrase: PASSPHRASE });
    const plain = await generateKey(dir, 'ed25519', 'plain@test', { name: 'plain' });
    const laptop = await generateKey(dir, 'ed25519', 'laptop@test', { name: 'laptop' });
    const config = join(dir, 'config.toml');
    writeFileSync(
      config,
      `[[key]]\nfile = "${work.privatePath}"\nname = "work"\n[[key]]\nfile = "${plain.privatePath}"\n` +
        `[[key]]\nfingerprint = "${laptop.fingerprint}"\nname = "laptop-key"\nconfirm = true\nhosts = ["laptop.example"]\n`,
    );
    const daemonEnv = { SSH_ASKPASS: askpass.path, SSH_ASKPASS_REQUIRE: 'force' };
    const start = (): Promise<AgentDaemon> => startAgentDaemon('tsagent', { args: ['--config', config], env: daemonEnv });

    // Listed from the start, without asking anything, in config order; again after a restart.
    let agent = await start();
    // Whichever agent runs when the test ends (stop() is idempotent).
    defer(() => agent.stop());
    const listNow = async (): Promise<string> => {
      const r = await run(bin['ssh-add'], ['-l'], { env: cleanEnv({ SSH_AUTH_SOCK: agent.socketPath }) });
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const before = await listNow();
    assert.ok(
      before.indexOf(work.fingerprint) >= 0 && before.indexOf(work.fingerprint) < before.indexOf(plain.fingerprint),
      before,
    );
    await agent.stop();
    agent = await start();
    const after = await listNow();
    assert.ok(after.includes(work.fingerprint) && after.includes(plain.fingerprint), after);
    assert.deepEqual(askpass.calls(), []);

    const sock = agent.socketPath;
    const env = cleanEnv({ SSH_AUTH_SOCK: sock });
    const keys = async (): Promise<KeyJson[]> => {
      const r = await cli(['keys', '--json'], env);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as KeyJson[];
    };
    const workFacts = async (): Promise<KeyJson> => (await keys()).find((k) => k.fingerprint === work.fingerprint)!;
    assert.deepEqual(
      (await keys()).map((k) => [k.name, k.source, k.loaded]),
      [
        ['work', 'config', false],
        ['plain@test', 'config', false],
      ],
    );
    // A [[key]] fingerprint= table names a key added later with ssh-add (nothing registered).
    const addLaptop = await run(bin['ssh-add'], [laptop.privatePath], { env });
    assert.equal(addLaptop.code, 0, addLaptop.stderr);
    const added = (await keys())[2] as KeyJson & { confirm: boolean; hosts: string[] | null };
    assert.deepEqual(
      [added.name, added.source, added.loaded, added.confirm, added.hosts],
      ['laptop-key', 'added', true, true, ['laptop.example']],
    );

    const sshd = await startSshd({ authorizedKeys: [work.publicLine] }, t);
    const login = () => run(bin.ssh, sshd.sshArgs([], ['echo', 'logged-in']), { env: sshd.clientEnv(sock), timeoutMs: 60_000 });

    // First use: the agent asks askpass, with a prompt naming the key.
    askpass.answer(PASSPHRASE);
    const first = await login();
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout.trim(), 'logged-in');
    assert.equal(askpass.calls().length, 1);
    assert.match(askpass.calls()[0], /"work"/);
    let facts = await workFacts();
    assert.equal(facts.loaded, true);
    assert.ok(facts.lastUsed !== null && !Number.isNaN(Date.parse(facts.lastUsed)), JSON.stringify(facts));
    // Loaded: the next login asks nothing.
    assert.equal((await login()).code, 0);
    assert.equal(askpass.calls().length, 1);

    // Lock drops the decrypted half (not listed while locked); unlock does not bring it back.
    const lockEnv = cleanEnv({
      SSH_AUTH_SOCK: sock,
      SSH_ASKPASS: join(askDir, 'askpass-lock'),
      SSH_ASKPASS_REQUIRE: 'force',
      DISPLAY: ':0',
    });
    writeFileSync(join(askDir, 'askpass-lock'), '#!/bin/sh\necho lock-pw\n');
    chmodSync(join(askDir, 'askpass-lock'), 0o700);
    const lock = await run(bin['ssh-add'], ['-x'], { env: lockEnv });
    assert.equal(lock.code, 0, lock.stderr);
    const locked = await run(bin['ssh-add'], ['-l'], { env });
    assert.doesNotMatch(locked.stdout, new RegExp(work.fingerprint.replace(/[+/]/g, '\\$&')));
    assert.equal((await workFacts()).loaded, false);
    const unlock = await run(bin['ssh-add'], ['-X'], { env: lockEnv });
    assert.equal(unlock.code, 0, unlock.stderr);
    assert.equal((await workFacts()).loaded, false);

    // tsagent unlock-key (stdin) decrypts it; the login then asks nothing (askpass would be wrong).
    askpass.answer('not the passphrase');
    const unlocked = await cli(['unlock-key', 'work'], env, `${PASSPHRASE}\n`);
    assert.equal(unlocked.code, 0, unlocked.stderr);
    const viaUnlock = await login();
    assert.equal(viaUnlock.code, 0, viaUnlock.stderr);
    assert.equal(askpass.calls().length, 1);

    // ssh-add -D keeps registered keys listed, their private halves dropped.
    const removeAll = await run(bin['ssh-add'], ['-D'], { env });
    assert.equal(removeAll.code, 0, removeAll.stderr);
    const stillListed = await listNow();
    assert.ok(stillListed.includes(work.fingerprint) && stillListed.includes(plain.fingerprint), stillListed);
    facts = await workFacts();
    assert.equal(facts.loaded, false);
    assert.equal(facts.source, 'config');

    // Three wrong answers fail that request; the agent keeps serving.
    const wrong = await login();
    assert.notEqual(wrong.code, 0, wrong.stdout);
    assert.match(wrong.stderr, /agent refused operation/);
    assert.equal(askpass.calls().length, 4);
    assert.ok((await listNow()).includes(work.fingerprint));
    assert.equal((await workFacts()).loaded, false);
    for (const line of askpass.calls()) assert.doesNotMatch(line, new RegExp(PASSPHRASE));
    assert.doesNotMatch(agent.stderr(), new RegExp(PASSPHRASE));
  },
);

test('git signing only from git: a rule for sign:git with parents = ["git"], then a deny', { timeout: 240_000 }, async (t) => {
  const bin = requirePeers(t, ['ssh-keygen', 'git'] as const);
  if (bin === undefined) return;
  const dir = await tempDir('tsagent-reggit-');
  const defer = deferred(t);
  defer(() => removeDir(dir));
  const key = await generateKey(dir, 'ed25519', 'signer@test', { name: 'signer' });
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    `[[key]]\nfile = "${key.privatePath}"\nname = "signer"\n` +
      `[[rule]]\npurposes = ["sign:git"]\nparents = ["git"]\naction = "allow"\n` +
      `[[rule]]\npurposes = ["sign:git"]\naction = "deny"\n`,
  );
  const agent = await startAgentDaemon('tsagent', { args: ['--config', config] });
  defer(() => agent.stop());
  const env = cleanEnv({ HOME: dir, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', SSH_AUTH_SOCK: agent.socketPath });

  // ssh-keygen run directly (its parent is this test, not git) is refused by rule 2.
  const msg = join(dir, 'msg');
  writeFileSync(msg, 'hello\n');
  const direct = await run(bin['ssh-keygen'], ['-Y', 'sign', '-n', 'git', '-f', key.publicPath, msg], { env, timeoutMs: 60_000 });
  assert.notEqual(direct.code, 0, direct.stderr);
  assert.match(direct.stderr, /agent refused operation/);

  // git commit -S runs ssh-keygen itself: rule 1 allows it.
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  const init = await run(bin.git, ['init', '-q', repo], { env });
  assert.equal(init.code, 0, init.stderr);
  const commit = await run(bin.git, signedCommitArgs(repo, key.publicPath), { env, timeoutMs: 60_000 });
  assert.equal(commit.code, 0, commit.stderr);
  const shown = await run(bin.git, ['-C', repo, 'cat-file', 'commit', 'HEAD'], { env });
  assert.match(shown.stdout, /-----BEGIN SSH SIGNATURE-----/);
});

test(
  'tsagent unlock-key answers a passphrase question a signature is waiting on; the askpass prompt is withdrawn',
  { timeout: 240_000 },
  async (t) => {
    const bin = requirePeers(t, ['ssh', 'sshd', 'ssh-keygen'] as const);
    if (bin === undefined) return;
    const dir = await tempDir('tsagent-regwait-');
    // Last registered, first run: the agent stops (it asks no more), its askpass processes
    // are killed, then the directory goes.
    const defer = deferred(t);
    defer(() => removeDir(dir));
    const askDir = join(dir, 'ask');
    mkdirSync(askDir, { mode: 0o700 });
    // Records its pid, then waits (bounded) for a release that never comes in this test.
    const askpass = join(askDir, 'askpass-wait');
    writeFileSync(
      askpass,
      '#!/bin/sh\nd=$(dirname "$0")\nprintf \'%s\\n\' "$$" >> "$d/waiting"\ni=0\nwhile [ $i -lt 600 ] && [ ! -e "$d/release" ]; do sleep 0.1; i=$((i+1)); done\necho wrong\n',
    );
    chmodSync(askpass, 0o700);
    const pids = (): number[] => {
      try {
        return readFileSync(join(askDir, 'waiting'), 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map(Number);
      } catch {
        return [];
      }
    };
    defer(() => {
      for (const pid of pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    });
    const work = await generateKey(dir, 'ed25519', 'work@test', { name: 'work', passphrase: PASSPHRASE });
    const config = join(dir, 'config.toml');
    writeFileSync(config, `[[key]]\nfile = "${work.privatePath}"\nname = "work"\n`);
    const agent = await startAgentDaemon('tsagent', {
      args: ['--config', config],
      env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force' },
    });
    defer(() => agent.stop());
    const sshd = await startSshd({ authorizedKeys: [work.publicLine] }, t);
    const login = run(bin.ssh, sshd.sshArgs([], ['echo', 'logged-in']), {
      env: sshd.clientEnv(agent.socketPath),
      timeoutMs: 60_000,
    });
    await waitFor(() => pids().length > 0, { timeoutMs: 30_000 });
    const unlocked = await cli(['unlock-key', 'work'], cleanEnv({ SSH_AUTH_SOCK: agent.socketPath }), `${PASSPHRASE}\n`);
    assert.equal(unlocked.code, 0, unlocked.stderr);
    const done = await login;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout.trim(), 'logged-in');
    assert.equal(pids().length, 1, 'asked once');
    // The agent killed the askpass it no longer needs (the script itself would wait a minute).
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(() => !alive(pids()[0]), { timeoutMs: 20_000, what: 'the withdrawn askpass to exit' });
  },
);
