/**
 * Real logins: `ssh` into an `sshd` started on 127.0.0.1, authenticating only with keys held
 * by the tsagent daemon — ed25519, ECDSA, RSA with rsa-sha2-256 and rsa-sha2-512, a user
 * certificate via TrustedUserCAKeys — and `ssh -A` forwarding, used from the far side.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentDaemon } from '../helpers/daemons';
import { generateKey, makeCA, signUserCert } from '../helpers/keys';
import type { GeneratedKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { removeDir, run, runOk, tempDir } from '../helpers/proc';
import { startSshd } from '../helpers/sshd';

const PEERS = ['ssh', 'sshd', 'ssh-add', 'ssh-keygen'] as const;

describe('ssh logins through tsagent', () => {
  let dir: string;
  let agent: AgentDaemon;
  const keys: Record<string, GeneratedKey> = {};

  before(async () => {
    dir = await tempDir('tsagent-login-');
    agent = await startAgentDaemon('tsagent', { args: ['-d'] });
  });
  after(async () => {
    await agent?.stop();
    if (dir) await removeDir(dir);
  });

  /** Adds the key to tsagent with the real ssh-add, once. */
  async function held(
    t: TestContext,
    type: 'ed25519' | 'ecdsa-256' | 'ecdsa-521' | 'rsa-2048',
  ): Promise<GeneratedKey | undefined> {
    const bin = requirePeers(t, PEERS);
    if (bin === undefined) return undefined;
    if (keys[type] === undefined) {
      const k = await generateKey(dir, type, `login-${type}`);
      await runOk(bin['ssh-add'], [k.privatePath], { env: { PATH: process.env.PATH, SSH_AUTH_SOCK: agent.socketPath } });
      keys[type] = k;
    }
    return keys[type];
  }

  const cases: Array<['ed25519' | 'ecdsa-256' | 'ecdsa-521' | 'rsa-2048', string]> = [
    ['ed25519', 'ssh-ed25519'],
    ['ecdsa-256', 'ecdsa-sha2-nistp256'],
    ['ecdsa-521', 'ecdsa-sha2-nistp521'],
    ['rsa-2048', 'rsa-sha2-256'],
    ['rsa-2048', 'rsa-sha2-512'],
  ];
  for (const [type, alg] of cases) {
    it(`logs in with ${type} as ${alg}`, async (t) => {
      const key = await held(t, type);
      const bin = requirePeers(t, PEERS);
      if (key === undefined || bin === undefined) return;
      const sshd = await startSshd({ authorizedKeys: [key.publicLine], extraConfig: [`PubkeyAcceptedAlgorithms ${alg}`] }, t);
      const r = await run(bin.ssh, sshd.sshArgs(['-o', `PubkeyAcceptedAlgorithms=${alg}`], ['echo', 'logged-in']), {
        env: sshd.clientEnv(agent.socketPath),
      });
      assert.equal(r.code, 0, `${r.stderr}\n--- sshd ---\n${sshd.log().slice(-2000)}`);
      assert.equal(r.stdout.trim(), 'logged-in');
      assert.match(
        sshd.log(),
        new RegExp(
          `Accepted publickey for ${sshd.user} from 127\\.0\\.0\\.1 port \\d+ ssh2: \\S+ ${key.fingerprint.replace(/[+/]/g, '\\$&')}`,
        ),
      );
    });
  }

  it('logs in with a user certificate (TrustedUserCAKeys, no authorized_keys)', async (t) => {
    const bin = requirePeers(t, PEERS);
    if (bin === undefined) return;
    const ca = await makeCA(dir);
    const user = await generateKey(dir, 'ed25519', 'cert-user');
    const sshd = await startSshd({ authorizedKeys: [], trustedUserCAKeys: ca.publicPath }, t);
    await signUserCert(ca, user.publicPath, { principals: [sshd.user], identity: 'tsagent-cert-login', validity: '-5m:+1h' });
    const certAgent = await startAgentDaemon('tsagent');
    t.after(() => certAgent.stop());
    const env = sshd.clientEnv(certAgent.socketPath);
    // Without the certificate the plain key alone is not authorized.
    await runOk(bin['ssh-add'], [user.privatePath], { env });
    await runOk(bin['ssh-add'], ['-d', `${user.privatePath}-cert.pub`], { env });
    const denied = await run(bin.ssh, sshd.sshArgs([], ['true']), { env });
    assert.equal(denied.code, 255, 'plain key alone is refused');
    // ssh-add picks up key-cert.pub next to the key: the certificate identity logs in.
    await runOk(bin['ssh-add'], [user.privatePath], { env });
    const r = await run(bin.ssh, sshd.sshArgs([], ['true']), { env });
    assert.equal(r.code, 0, `${r.stderr}\n--- sshd ---\n${sshd.log().slice(-2000)}`);
    assert.match(sshd.log(), /Accepted publickey .*ED25519-CERT .*ID tsagent-cert-login/);
  });

  it('ssh -A forwards the agent: the far side lists the keys and logs in onward with them', async (t) => {
    const key = await held(t, 'ed25519');
    const bin = requirePeers(t, PEERS);
    if (key === undefined || bin === undefined) return;
    const sshd = await startSshd({ authorizedKeys: [key.publicLine] }, t);
    const env = sshd.clientEnv(agent.socketPath);
    const listed = await run(bin.ssh, sshd.sshArgs(['-A'], ['ssh-add', '-L']), { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.includes(key.publicLine.split(' ')[1]), 'the forwarded agent lists our key');
    // Second hop: from the far side, ssh again (to the same sshd) using the forwarded agent.
    const hop = sshd
      .sshArgs([], ['echo', 'second-hop'])
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ');
    const r = await run(bin.ssh, sshd.sshArgs(['-A'], [`ssh ${hop}`]), { env });
    assert.equal(r.code, 0, `${r.stderr}\n--- sshd ---\n${sshd.log().slice(-2000)}`);
    assert.equal(r.stdout.trim(), 'second-hop');
    // Without -A the far side has no agent.
    const none = await run(bin.ssh, sshd.sshArgs([], ['ssh-add', '-L']), { env });
    assert.equal(none.code, 2);
  });

  it('the daemon log (debug) never holds key material', () => {
    const log = agent.stderr();
    assert.ok(log.length > 0);
    assert.doesNotMatch(log, /PRIVATE KEY|BEGIN OPENSSH/);
    for (const line of log.trim().split('\n')) JSON.parse(line);
  });
});
