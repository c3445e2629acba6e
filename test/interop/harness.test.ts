/**
 * Proves the interop harness (test/helpers) against the REAL OpenSSH programs only — no
 * tsagent code: OpenSSH's ssh-agent + ssh-add, sshd logins through that agent (plain keys and
 * a user certificate via TrustedUserCAKeys), and agent forwarding with `ssh -A`.
 */
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { test } from 'node:test';
import { generateKey, makeCA, signUserCert } from '../helpers/keys';
import type { GeneratedKey } from '../helpers/keys';
import { startOpenSSHAgent } from '../helpers/openssh-agent';
import { requirePeers } from '../helpers/peers';
import { liveChildCount, removeDir, run, runOk, tempDir } from '../helpers/proc';
import { startSshd } from '../helpers/sshd';

const PEERS = ['ssh-agent', 'ssh-add', 'ssh-keygen', 'ssh', 'sshd'] as const;

test('harness drives the real OpenSSH peers', { timeout: 180_000 }, async (t) => {
  const bin = requirePeers(t, PEERS);
  if (bin === undefined) return;

  const keyDir = await tempDir('harness-keys-');
  t.after(() => removeDir(keyDir));
  let ed: GeneratedKey | undefined;
  let rsa: GeneratedKey | undefined;

  await t.test('OpenSSH ssh-agent: ssh-add an ed25519 and an rsa-2048 key, ssh-add -l lists 2', async (st) => {
    ed = await generateKey(keyDir, 'ed25519', 'harness-ed25519');
    rsa = await generateKey(keyDir, 'rsa-2048', 'harness-rsa');
    const agent = await startOpenSSHAgent(st);
    const env = agent.clientEnv();

    const empty = await run(bin['ssh-add'], ['-l'], { env });
    assert.equal(empty.code, 1, `empty agent: ${empty.stdout}${empty.stderr}`);
    assert.match(empty.stdout, /The agent has no identities/);

    await runOk(bin['ssh-add'], [ed.privatePath, rsa.privatePath], { env });
    const l = await runOk(bin['ssh-add'], ['-l'], { env });
    const lines = l.stdout.trim().split('\n');
    assert.equal(lines.length, 2, l.stdout);
    assert.ok(l.stdout.includes(ed.fingerprint), 'ed25519 fingerprint listed');
    assert.ok(l.stdout.includes(rsa.fingerprint), 'rsa fingerprint listed');
    assert.match(l.stdout, /^256 \S+ harness-ed25519 \(ED25519\)$/m);
    assert.match(l.stdout, /^2048 \S+ harness-rsa \(RSA\)$/m);
  });

  await t.test('sshd: log in with ssh using only the agent', async (st) => {
    assert.ok(ed !== undefined && rsa !== undefined);
    const agent = await startOpenSSHAgent(st);
    await runOk(bin['ssh-add'], [ed.privatePath, rsa.privatePath], { env: agent.clientEnv() });
    const sshd = await startSshd({ authorizedKeys: [ed.publicLine, rsa.publicLine] }, st);

    const ok = await run(bin.ssh, sshd.sshArgs([], ['true']), { env: sshd.clientEnv(agent.socketPath) });
    assert.equal(ok.code, 0, `ssh failed: ${ok.stderr}\n--- sshd log ---\n${sshd.log().slice(-3000)}`);
    assert.match(sshd.log(), new RegExp(`Accepted publickey for ${sshd.user} from 127\\.0\\.0\\.1`));

    const who = await runOk(bin.ssh, sshd.sshArgs([], ['id', '-un']), { env: sshd.clientEnv(agent.socketPath) });
    assert.equal(who.stdout.trim(), sshd.user);

    // Isolation: with an empty agent (and no agent at all) the login must fail — ssh has no
    // other key source (no ~/.ssh/id_*, no config), so the harness really tests the agent.
    const emptyAgent = await startOpenSSHAgent(st);
    const denied = await run(bin.ssh, sshd.sshArgs([], ['true']), { env: sshd.clientEnv(emptyAgent.socketPath) });
    assert.equal(denied.code, 255, denied.stderr);
    assert.match(denied.stderr, /Permission denied \(publickey\)/);
    const noAgent = await run(bin.ssh, sshd.sshArgs([], ['true']), { env: sshd.clientEnv() });
    assert.equal(noAgent.code, 255, noAgent.stderr);
  });

  await t.test('sshd: certificate login via TrustedUserCAKeys (authorized_keys empty)', async (st) => {
    const ca = await makeCA(keyDir);
    const userKey = await generateKey(keyDir, 'ed25519', 'harness-cert-user');
    const user = userInfo().username;
    const certPath = await signUserCert(ca, userKey.publicPath, {
      principals: [user],
      identity: 'harness-cert',
      validity: '-5m:+1h',
    });
    const agent = await startOpenSSHAgent(st);
    const env = agent.clientEnv();
    // ssh-add loads <key>-cert.pub next to the key automatically: key + certificate.
    const add = await runOk(bin['ssh-add'], [userKey.privatePath], { env });
    assert.match(add.stderr, /Certificate added/);
    const l = await runOk(bin['ssh-add'], ['-l'], { env });
    assert.equal(l.stdout.trim().split('\n').length, 2, l.stdout);
    assert.match(l.stdout, /\(ED25519-CERT\)/);

    const sshd = await startSshd({ authorizedKeys: [], trustedUserCAKeys: ca.publicPath }, st);
    const r = await run(bin.ssh, sshd.sshArgs([], ['true']), { env: sshd.clientEnv(agent.socketPath) });
    assert.equal(r.code, 0, `cert login failed: ${r.stderr}\n--- sshd log ---\n${sshd.log().slice(-3000)}`);
    assert.match(sshd.log(), /Accepted publickey for \S+ from 127\.0\.0\.1 .*ED25519-CERT.*ID harness-cert/);
    assert.ok(certPath.endsWith('-cert.pub'));
  });

  await t.test('ssh -A: the remote side lists the forwarded agent keys with ssh-add -L', async (st) => {
    assert.ok(ed !== undefined && rsa !== undefined);
    const agent = await startOpenSSHAgent(st);
    await runOk(bin['ssh-add'], [ed.privatePath, rsa.privatePath], { env: agent.clientEnv() });
    const sshd = await startSshd({ authorizedKeys: [ed.publicLine], allowAgentForwarding: true }, st);
    const r = await run(bin.ssh, sshd.sshArgs(['-A'], ['ssh-add', '-L']), { env: sshd.clientEnv(agent.socketPath) });
    assert.equal(r.code, 0, `ssh -A ssh-add -L failed: ${r.stderr}\n--- sshd log ---\n${sshd.log().slice(-3000)}`);
    const remote = r.stdout.trim().split('\n');
    assert.equal(remote.length, 2, r.stdout);
    const blobs = remote.map((line) => line.split(/\s+/)[1]);
    assert.ok(blobs.includes(ed.publicLine.split(/\s+/)[1]), 'ed25519 key visible remotely');
    assert.ok(blobs.includes(rsa.publicLine.split(/\s+/)[1]), 'rsa key visible remotely');

    // Without -A the remote has no agent: ssh-add -L exits 2 ("Could not open a connection").
    const noFwd = await run(bin.ssh, sshd.sshArgs([], ['ssh-add', '-L']), { env: sshd.clientEnv(agent.socketPath) });
    assert.equal(noFwd.code, 2, noFwd.stdout + noFwd.stderr);
  });

  await t.test('every helper-started process is gone after the subtests', async () => {
    // Subtest t.after hooks have run by now (they stop the agents and sshds).
    assert.equal(liveChildCount(), 0);
  });
});
