/**
 * `ssh-add -h` end to end with the real OpenSSH tools: two sshd instances on 127.0.0.1
 * ("alpha" and "beta" in a known_hosts file given to ssh-add -H), logins allowed and refused
 * by the key's destination constraints, and two-hop paths through `ssh -A`. Runs against
 * tsagent and, as the reference, OpenSSH's own agent.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentImpl, AgentDaemon } from '../helpers/daemons';
import { generateKey } from '../helpers/keys';
import type { GeneratedKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { removeDir, run, runOk, tempDir } from '../helpers/proc';
import { startSshd } from '../helpers/sshd';
import type { Sshd } from '../helpers/sshd';

const PEERS = ['ssh', 'sshd', 'ssh-add', 'ssh-keygen'] as const;

/** Quotes ssh arguments for the remote shell. */
function remote(args: readonly string[]): string {
  return args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}

for (const impl of ['tsagent', 'openssh'] as const satisfies readonly AgentImpl[]) {
  describe(`ssh-add -h destination constraints, end to end (${impl})`, () => {
    let dir: string;
    let key: GeneratedKey;
    let knownHosts: string;
    let alpha: Sshd;
    let beta: Sshd;

    before(async () => {
      dir = await tempDir('tsagent-restrict-');
      key = await generateKey(dir, 'ed25519', 'restricted-key');
      alpha = await startSshd({ authorizedKeys: [key.publicLine] });
      beta = await startSshd({ authorizedKeys: [key.publicLine] });
      // ssh-add -h looks destinations up by name in a known_hosts file.
      knownHosts = join(dir, 'known_hosts');
      writeFileSync(knownHosts, `alpha ${alpha.hostKeyPublicLine}\nbeta ${beta.hostKeyPublicLine}\n`);
    });
    after(async () => {
      await alpha?.stop();
      await beta?.stop();
      if (dir) await removeDir(dir);
    });

    /** A fresh agent holding the key with these -h constraints. */
    async function agentWith(t: TestContext, constraints: string[]): Promise<AgentDaemon | undefined> {
      const bin = requirePeers(t, PEERS);
      if (bin === undefined) return undefined;
      const agent = await startAgentDaemon(impl);
      t.after(() => agent.stop());
      const args = ['-H', knownHosts, ...constraints.flatMap((c) => ['-h', c]), key.privatePath];
      const added = await run(bin['ssh-add'], args, {
        env: { PATH: process.env.PATH, HOME: dir, SSH_AUTH_SOCK: agent.socketPath },
      });
      assert.equal(added.code, 0, added.stderr);
      assert.match(added.stderr, /Restricted to|Identity added/);
      return agent;
    }

    const login = async (agent: AgentDaemon, server: Sshd, extra: string[] = [], command: string[] = ['true']) => {
      const bin = requirePeers({ skip: () => undefined }, PEERS)!;
      return run(bin.ssh, server.sshArgs(extra, command), { env: server.clientEnv(agent.socketPath) });
    };

    it('a key restricted to alpha logs in to alpha and is refused by beta', async (t) => {
      const agent = await agentWith(t, ['alpha']);
      if (agent === undefined) return;
      const ok = await login(agent, alpha);
      assert.equal(ok.code, 0, `${ok.stderr}\n--- sshd ---\n${alpha.log().slice(-1500)}`);
      const refused = await login(agent, beta);
      assert.equal(refused.code, 255, 'beta is not a permitted destination');
      assert.match(refused.stderr, /Permission denied/);
    });

    it('alpha then beta through ssh -A, when "alpha>beta" is permitted', async (t) => {
      const agent = await agentWith(t, ['alpha', 'alpha>beta']);
      if (agent === undefined) return;
      const r = await login(agent, alpha, ['-A'], [remote(['ssh', ...beta.sshArgs([], ['echo', 'reached-beta'])])]);
      assert.equal(r.code, 0, `${r.stderr}\n--- beta ---\n${beta.log().slice(-1500)}`);
      assert.equal(r.stdout.trim(), 'reached-beta');
    });

    it('without "alpha>beta" the key is hidden on alpha and the second hop is refused', async (t) => {
      const agent = await agentWith(t, ['alpha']);
      if (agent === undefined) return;
      const listed = await login(agent, alpha, ['-A'], ['ssh-add', '-L']);
      assert.equal(listed.code, 1, `${listed.stdout}${listed.stderr}`);
      assert.match(listed.stdout, /The agent has no identities/);
      const hop = await login(agent, alpha, ['-A'], [remote(['ssh', ...beta.sshArgs([], ['true'])])]);
      assert.equal(hop.code, 255, 'the forwarded hop to beta must fail');
    });

    it('the unrestricted path still works: locally the key is listed and test-signs', async (t) => {
      const agent = await agentWith(t, ['alpha']);
      const bin = requirePeers(t, PEERS);
      if (agent === undefined || bin === undefined) return;
      const env = { PATH: process.env.PATH, HOME: dir, SSH_AUTH_SOCK: agent.socketPath };
      const l = await runOk(bin['ssh-add'], ['-L'], { env });
      assert.ok(l.stdout.includes(key.publicLine.split(' ')[1]));
      // ssh-add -T signs arbitrary data: a destination-constrained key refuses that locally.
      const tsign = await run(bin['ssh-add'], ['-T', key.publicPath], { env });
      assert.notEqual(tsign.code, 0);
    });
  });
}
