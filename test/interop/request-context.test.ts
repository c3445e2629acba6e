/**
 * The request context from real peers (issue 12, POLICY.md §1): a recording relay in front of
 * OpenSSH's ssh-agent sees what real `ssh`, `ssh-keygen -Y sign`, `git commit -S` and the
 * ssh2 library send; the context modules must turn it into the right purpose, process and
 * destination — names proven by known_hosts files, plain and `ssh-keygen -H` hashed, reached
 * through an ssh config alias with HostKeyAlias, and the `via` chain of `ssh -A`.
 */
import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { Client } from 'ssh2';
import { buildDestination } from '../../src/context/destination';
import { KnownHostsResolver } from '../../src/context/known-hosts';
import { knownHostsNamer } from '../../src/context/namer';
import { signPurpose } from '../../src/context/purpose';
import { peerCandidates } from '../../src/context/ssh-argv';
import type { ProcessInfo } from '../../src/context/types';
import { decodeSessionBind } from '../../src/protocol/session-bind';
import { startCaptureRelay } from '../helpers/capture-relay';
import type { CaptureRelay, CapturedConnection } from '../helpers/capture-relay';
import { generateKey } from '../helpers/keys';
import type { GeneratedKey } from '../helpers/keys';
import { startOpenSSHAgent } from '../helpers/openssh-agent';
import type { OpenSSHAgent } from '../helpers/openssh-agent';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, removeDir, run, runOk, tempDir } from '../helpers/proc';
import { aliasSshConfig } from '../helpers/ssh-alias';
import { startSshd } from '../helpers/sshd';
import type { Sshd } from '../helpers/sshd';
import { signedCommitArgs } from '../helpers/git';

const PEERS = ['ssh', 'sshd', 'ssh-add', 'ssh-keygen', 'ssh-agent'] as const;

function bindsOf(c: CapturedConnection): Array<{ hostKey: { blob: Buffer }; forwarded: boolean }> {
  return c.sessionBinds.map((b) => {
    const d = decodeSessionBind(b);
    return { hostKey: { blob: Buffer.from(d.hostKey) }, forwarded: d.isForwarding };
  });
}

function keyField(line: string): string {
  return line.split(/\s+/).slice(0, 2).join(' ');
}

function processOf(c: CapturedConnection): ProcessInfo {
  const p = c.process;
  assert.ok(p !== null, 'peer credentials were read');
  return p;
}

describe('request context from real peers', () => {
  let dir: string;
  let agent: OpenSSHAgent;
  let relay: CaptureRelay;
  let key: GeneratedKey;

  before(async () => {
    dir = await tempDir('tsagent-ctx-');
  });
  after(async () => {
    await relay?.stop();
    await agent?.stop();
    await removeDir(dir);
  });

  async function setup(t: TestContext): Promise<boolean> {
    if (requirePeers(t, PEERS) === undefined) return false;
    if (relay !== undefined) return true;
    agent = await startOpenSSHAgent();
    key = await generateKey(dir, 'ed25519', 'ctx-user-key');
    await runOk('ssh-add', [key.privatePath], { env: agent.clientEnv() });
    relay = await startCaptureRelay(agent.socketPath);
    return true;
  }

  /** The connections made while `fn` ran. */
  async function during(fn: () => Promise<unknown>): Promise<CapturedConnection[]> {
    const before = relay.connections.length;
    await fn();
    return relay.connections.slice(before);
  }

  it('ssh-keygen -Y sign -n git: purpose sign:git; the process is ssh-keygen, its parent this test', async (t) => {
    if (!(await setup(t))) return;
    const msg = join(dir, 'message.txt');
    writeFileSync(msg, 'hello\n');
    const conns = await during(() =>
      runOk('ssh-keygen', ['-Y', 'sign', '-n', 'git', '-f', key.publicPath, msg], {
        env: cleanEnv({ SSH_AUTH_SOCK: relay.socketPath }),
      }),
    );
    const signing = conns.find((c) => c.signData.length > 0);
    assert.ok(signing !== undefined, 'ssh-keygen asked for a signature');
    assert.deepEqual(signPurpose(signing.signData[0]), { purpose: 'sign:git', user: null });
    const p = processOf(signing);
    assert.equal(p.exe, realpathSync('/usr/bin/ssh-keygen'));
    assert.deepEqual(p.argv, ['ssh-keygen', '-Y', 'sign', '-n', 'git', '-f', key.publicPath, msg]);
    assert.equal(p.uid, process.getuid?.());
    assert.equal(p.parents?.[0], realpathSync(process.execPath), 'spawned by this node process');
    assert.ok((p.parents?.length ?? 0) <= 4);
    // Another namespace, and the message is not part of the purpose.
    const conns2 = await during(() =>
      runOk('ssh-keygen', ['-Y', 'sign', '-n', 'file@example.com', '-f', key.publicPath, msg], {
        env: cleanEnv({ SSH_AUTH_SOCK: relay.socketPath }),
      }),
    );
    const s2 = conns2.find((c) => c.signData.length > 0)!;
    assert.equal(signPurpose(s2.signData[0]).purpose, 'sign:file@example.com');
  });

  it('git commit -S with gpg.format=ssh: sign:git, and the parent chain shows git', async (t) => {
    if (!(await setup(t))) return;
    if (requirePeers(t, ['git'] as const) === undefined) return;
    const repo = join(dir, 'repo');
    mkdirSync(repo);
    const env = cleanEnv({
      HOME: dir,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      SSH_AUTH_SOCK: relay.socketPath,
    });
    await runOk('git', ['init', '-q', repo], { env });
    const conns = await during(() => runOk('git', signedCommitArgs(repo, key.publicPath), { env }));
    const signing = conns.find((c) => c.signData.length > 0);
    assert.ok(signing !== undefined, 'git made ssh-keygen sign');
    assert.equal(signPurpose(signing.signData[0]).purpose, 'sign:git');
    const p = processOf(signing);
    assert.equal(p.exe?.endsWith('/ssh-keygen'), true);
    assert.ok(p.parents !== null && p.parents.some((x) => x.endsWith('/git')), `parents ${JSON.stringify(p.parents)} show git`);
  });

  /** An ssh config with an alias and HostKeyAlias, and a client home holding known_hosts. */
  const aliasConfig = (sshd: Sshd, home: string, alias: string, hostKeyAlias: string): string =>
    aliasSshConfig(sshd, home, alias, hostKeyAlias);

  for (const hashed of [false, true]) {
    it(`ssh via a config alias with HostKeyAlias, ${hashed ? 'hashed' : 'plain'} known_hosts: host, user, login, exe ssh`, async (t) => {
      if (!(await setup(t))) return;
      const sshd = await startSshd({ authorizedKeys: [key.publicLine] }, t);
      const home = join(dir, `home-${hashed ? 'hashed' : 'plain'}`);
      mkdirSync(join(home, '.ssh'), { recursive: true });
      const khFile = join(home, '.ssh', 'known_hosts');
      writeFileSync(khFile, `box.test ${keyField(sshd.hostKeyPublicLine)}\n`);
      if (hashed) await runOk('ssh-keygen', ['-H', '-f', khFile], { env: cleanEnv() });
      const cfg = aliasConfig(sshd, home, 'gitbox', 'box.test');
      const conns = await during(async () => {
        const r = await run('ssh', ['-F', cfg, 'gitbox', 'true'], {
          env: cleanEnv({ HOME: home, SSH_AUTH_SOCK: relay.socketPath }),
        });
        assert.equal(r.code, 0, r.stderr);
      });
      const c = conns.find((x) => x.signData.length > 0);
      assert.ok(c !== undefined, 'ssh signed a login');
      const purpose = signPurpose(c.signData[0]);
      assert.deepEqual(purpose, { purpose: 'login', user: sshd.user });
      const p = processOf(c);
      assert.equal(p.exe, realpathSync('/usr/bin/ssh'));
      assert.deepEqual(p.argv, ['ssh', '-F', cfg, 'gitbox', 'true']);
      const resolver = new KnownHostsResolver({ home, systemDir: join(dir, 'no-etc'), checkIntervalMs: 0 });
      // The argv names the alias; only the config's literal names can reveal a hashed entry.
      const namer = knownHostsNamer(resolver, ['box.test', '*.prod']);
      const dest = buildDestination(bindsOf(c), (b) => namer(b, p), purpose.user);
      assert.ok(dest !== null);
      assert.equal(dest.host, 'box.test');
      assert.deepEqual(dest.names, ['box.test']);
      assert.equal(dest.user, sshd.user);
      assert.equal(dest.forwarded, false);
      assert.deepEqual(dest.via, []);
      assert.equal(resolver.nameHasKey('box.test', null, bindsOf(c)[0].hostKey.blob), true);
      if (hashed) {
        // Without the config's name the hashed entry cannot be read: hostKey set, host null.
        const bare = buildDestination(bindsOf(c), (b) => resolver.namesFor(b, peerCandidates(p)));
        assert.equal(bare?.host, null);
        assert.match(bare?.hostKey ?? '', /^SHA256:/);
      }
    });
  }

  it('a destination whose host key is in no known_hosts file: host null, hostKey set', async (t) => {
    if (!(await setup(t))) return;
    const sshd = await startSshd({ authorizedKeys: [key.publicLine] }, t);
    const conns = await during(async () => {
      const r = await run('ssh', sshd.sshArgs([], ['true']), { env: sshd.clientEnv(relay.socketPath) });
      assert.equal(r.code, 0, r.stderr);
    });
    const c = conns.find((x) => x.signData.length > 0)!;
    const resolver = new KnownHostsResolver({
      home: join(dir, 'empty-home'),
      systemDir: join(dir, 'no-etc'),
      checkIntervalMs: 0,
    });
    const dest = buildDestination(bindsOf(c), (b) => resolver.namesFor(b, peerCandidates(processOf(c))));
    assert.equal(dest?.host, null);
    assert.deepEqual(dest?.names, []);
    assert.match(dest?.hostKey ?? '', /^SHA256:/);
    // With the sshd's own known_hosts ([127.0.0.1]:port) the argv candidate is confirmed, port included.
    const withFile = new KnownHostsResolver({
      home: join(dir, 'empty-home'),
      systemDir: join(dir, 'no-etc'),
      extraFiles: [sshd.knownHostsPath],
      checkIntervalMs: 0,
    });
    const named = buildDestination(bindsOf(c), (b) => withFile.namesFor(b, peerCandidates(processOf(c))));
    assert.equal(named?.host, '127.0.0.1');
    assert.equal(named?.port, sshd.port);
  });

  it('the ssh2 library logs in with the plain publickey method: login and its user', async (t) => {
    if (!(await setup(t))) return;
    const sshd = await startSshd({ authorizedKeys: [key.publicLine] }, t);
    const conns = await during(
      () =>
        new Promise<void>((resolve, reject) => {
          const client = new Client();
          const timer = setTimeout(() => {
            client.end();
            reject(new Error('ssh2 login timed out'));
          }, 20_000);
          client
            .on('ready', () => {
              clearTimeout(timer);
              client.end();
              resolve();
            })
            .on('error', (e) => {
              clearTimeout(timer);
              reject(e);
            })
            .connect({
              host: '127.0.0.1',
              port: sshd.port,
              username: sshd.user,
              agent: relay.socketPath,
              hostVerifier: () => true,
            });
        }),
    );
    const c = conns.find((x) => x.signData.length > 0);
    assert.ok(c !== undefined, 'ssh2 asked for a signature');
    assert.deepEqual(signPurpose(c.signData[0]), { purpose: 'login', user: sshd.user });
    assert.equal(c.sessionBinds.length, 0, 'ssh2 does not bind: destination null');
    assert.equal(
      buildDestination(bindsOf(c), (b) => new KnownHostsResolver({ home: dir }).namesFor(b)),
      null,
    );
  });

  it('ssh -A through one sshd to a second: the second login is forwarded, via names the first', async (t) => {
    if (!(await setup(t))) return;
    const first = await startSshd({ authorizedKeys: [key.publicLine] }, t);
    const second = await startSshd({ authorizedKeys: [key.publicLine] }, t);
    const names = join(dir, 'hops_known_hosts');
    writeFileSync(names, `bastion.test ${keyField(first.hostKeyPublicLine)}\ninner.test ${keyField(second.hostKeyPublicLine)}\n`);
    const conns = await during(async () => {
      const r = await run('ssh', first.sshArgs(['-A'], ['ssh', ...second.sshArgs([], ['true'])]), {
        env: first.clientEnv(relay.socketPath),
      });
      assert.equal(r.code, 0, r.stderr);
    });
    const fwd = conns.find((c) => c.sessionBinds.length === 2 && c.signData.length > 0);
    assert.ok(
      fwd !== undefined,
      `a forwarded connection with two bindings signed (saw ${conns.map((c) => c.sessionBinds.length).join(',')})`,
    );
    const resolver = new KnownHostsResolver({
      home: join(dir, 'empty-home'),
      systemDir: join(dir, 'no-etc'),
      extraFiles: [names],
      checkIntervalMs: 0,
    });
    const p = processOf(fwd);
    assert.equal(p.exe, realpathSync('/usr/bin/ssh'), 'the peer of a forwarded connection is the local ssh -A');
    const purpose = signPurpose(fwd.signData[0]);
    assert.equal(purpose.purpose, 'login');
    const namer = knownHostsNamer(resolver);
    const dest = buildDestination(bindsOf(fwd), (b) => namer(b, p), purpose.user);
    assert.deepEqual(dest, {
      hostKey: dest?.hostKey,
      names: ['inner.test'],
      host: 'inner.test',
      port: null,
      user: second.user,
      forwarded: true,
      via: ['bastion.test'],
    });
    // The direct first login on its own connection: not forwarded.
    const direct = conns.find((c) => c.sessionBinds.length === 1 && c.signData.length > 0)!;
    assert.equal(buildDestination(bindsOf(direct), (b) => namer(b, processOf(direct)))?.host, 'bastion.test');
    assert.equal(buildDestination(bindsOf(direct), (b) => namer(b, processOf(direct)))?.forwarded, false);
  });
});
