/**
 * Smartcard keys with a real PKCS#11 module (SoftHSM2): the real `ssh-add -s/-e` (PIN via
 * SSH_ASKPASS), `ssh-add -l/-T`, `ssh` logins to a real sshd with the token's RSA and ECDSA
 * keys, a second add of the same provider, a wrong PIN, the provider allowlist (-P), lock —
 * the same session against tsagent and OpenSSH's ssh-agent (with its ssh-pkcs11-helper).
 * Then what only tsagent promises: a crashing provider helper takes only its keys with it,
 * and the PIN is in no log, argv or environment.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { TSAGENT_BIN, startAgentDaemon } from '../helpers/daemons';
import type { AgentImpl, AgentDaemon } from '../helpers/daemons';
import { generateKey } from '../helpers/keys';
import { requirePeer, requirePeers } from '../helpers/peers';
import { deferred, removeDir, run, runOk, stopPid, tempDir, waitFor } from '../helpers/proc';
import { makeSoftToken, requireSoftHsm } from '../helpers/softhsm';
import type { SoftToken } from '../helpers/softhsm';
import { startSshd } from '../helpers/sshd';

const PEERS = ['ssh', 'sshd', 'ssh-add', 'ssh-keygen', 'ssh-agent'] as const;

interface Fixture {
  dir: string;
  token: SoftToken;
  askpass: string;
  answerFile: string;
  bin: { [K in (typeof PEERS)[number]]: string };
  /** A clean-up that runs before the fixture's directory (and its token) is removed. */
  defer: (cleanup: () => unknown) => void;
}

/** OpenSSH's agent runs each provider in this helper (Debian's path). */
const SSH_PKCS11_HELPER = '/usr/lib/openssh/ssh-pkcs11-helper';

async function fixture(t: TestContext, impl: AgentImpl = 'tsagent'): Promise<Fixture | undefined> {
  const bin = requirePeers(t, PEERS);
  const hsm = requireSoftHsm(t);
  if (bin === undefined || hsm === undefined) return undefined;
  if (impl === 'openssh' && requirePeer(t, SSH_PKCS11_HELPER) === undefined) return undefined;
  const dir = await tempDir('tsagent-p11-');
  const defer = deferred(t);
  defer(() => removeDir(dir));
  const token = await makeSoftToken(dir, hsm.util);
  // ssh-add asks for the PIN (and lock passphrases) through this script; the test sets the answer.
  const answerFile = join(dir, 'answer');
  const askpass = join(dir, 'askpass');
  writeFileSync(askpass, `#!/bin/sh\ncat '${answerFile}'\n`);
  chmodSync(askpass, 0o700);
  return { dir, token, askpass, answerFile, bin, defer };
}

function clientEnv(f: Fixture, agent: AgentDaemon, answer: string): NodeJS.ProcessEnv {
  writeFileSync(f.answerFile, `${answer}\n`, { mode: 0o600 });
  return {
    PATH: process.env.PATH,
    HOME: agent.dir,
    SSH_AUTH_SOCK: agent.socketPath,
    SSH_ASKPASS: f.askpass,
    SSH_ASKPASS_REQUIRE: 'force',
  };
}

async function list(f: Fixture, agent: AgentDaemon): Promise<string[]> {
  const r = await run(f.bin['ssh-add'], ['-l'], { env: clientEnv(f, agent, '') });
  return r.code === 0 ? r.stdout.trim().split('\n').sort() : [];
}

/** `ssh-add -l` lines, sorted: the order is the module's C_FindObjects order (SoftHSM: by object file name). */
function expectedList(token: SoftToken): string[] {
  return token.keys.map((k) => `${k.bits} ${k.fingerprint} ${k.label} (${k.kind})`).sort();
}

for (const impl of ['tsagent', 'openssh'] as AgentImpl[]) {
  describe(`PKCS#11 with SoftHSM2 against ${impl}`, () => {
    it('ssh-add -s adds every token key with its label, ssh logs in with them, ssh-add -e removes them', async (t) => {
      const f = await fixture(t, impl);
      if (f === undefined) return;
      const agent = await startAgentDaemon(impl, { env: f.token.env });
      f.defer(() => agent.stop());
      const add = await run(f.bin['ssh-add'], ['-s', '/usr/lib/softhsm/libsofthsm2.so'], {
        env: clientEnv(f, agent, f.token.pin),
      });
      assert.equal(add.code, 0, add.stderr);
      assert.match(add.stderr, /Card added: \/usr\/lib\/softhsm\/libsofthsm2\.so/);
      assert.deepEqual(await list(f, agent), expectedList(f.token));

      // Each key signs and the signature verifies (ssh-add -T), then real logins.
      for (const k of f.token.keys) {
        const pub = join(f.dir, `${k.label}.pub`);
        const r = await run(f.bin['ssh-add'], ['-T', pub], { env: clientEnv(f, agent, '') });
        assert.equal(r.code, 0, `${k.label}: ${r.stderr}`);
      }
      const sshd = await startSshd(
        { authorizedKeys: f.token.keys.map((k) => k.publicLine), extraConfig: ['PubkeyAcceptedAlgorithms +ssh-rsa'] },
        t,
      );
      const logins: Array<[string, string]> = [
        ['rsa-sha2-256', f.token.keys[0].fingerprint],
        ['rsa-sha2-512', f.token.keys[0].fingerprint],
        ['ssh-rsa', f.token.keys[0].fingerprint],
        ['ecdsa-sha2-nistp256', f.token.keys[1].fingerprint],
      ];
      for (const [alg, fp] of logins) {
        const r = await run(f.bin.ssh, sshd.sshArgs(['-o', `PubkeyAcceptedAlgorithms=${alg}`], ['echo', 'token-login']), {
          env: sshd.clientEnv(agent.socketPath),
        });
        assert.equal(r.code, 0, `${alg}: ${r.stderr}\n--- sshd ---\n${sshd.log().slice(-2000)}`);
        assert.equal(r.stdout.trim(), 'token-login');
        assert.ok(sshd.log().includes(fp), `sshd accepted ${fp} for ${alg}`);
      }

      // The same provider again: refused, the first keys stay and still sign.
      const again = await run(f.bin['ssh-add'], ['-s', '/usr/lib/softhsm/libsofthsm2.so'], {
        env: clientEnv(f, agent, f.token.pin),
      });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /Could not add card/);
      assert.deepEqual(await list(f, agent), expectedList(f.token));
      const still = await run(f.bin['ssh-add'], ['-T', join(f.dir, 'token-ecdsa.pub')], { env: clientEnv(f, agent, '') });
      assert.equal(still.code, 0, still.stderr);

      // -e removes the provider and its keys; it can then be added again.
      const rm = await run(f.bin['ssh-add'], ['-e', '/usr/lib/softhsm/libsofthsm2.so'], { env: clientEnv(f, agent, '') });
      assert.equal(rm.code, 0, rm.stderr);
      assert.match(rm.stderr, /Card removed/);
      assert.deepEqual(await list(f, agent), []);
      const readd = await run(f.bin['ssh-add'], ['-s', '/usr/lib/softhsm/libsofthsm2.so'], {
        env: clientEnv(f, agent, f.token.pin),
      });
      assert.equal(readd.code, 0, readd.stderr);
      assert.equal((await list(f, agent)).length, 2);
    });

    it('an X.509 certificate object gives its key, labelled with the subject; its private key signs', async (t) => {
      const f = await fixture(t, impl);
      const tools = requirePeers(t, ['openssl', 'pkcs11-tool'] as const);
      if (f === undefined || tools === undefined) return;
      // A P-384 key on the token as a certificate and a private key only (no public-key object).
      const key = join(f.dir, 'cert.key');
      const pem = join(f.dir, 'cert.pem');
      const env = { PATH: process.env.PATH, ...f.token.env };
      await runOk(
        tools.openssl,
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-384',
          '-nodes',
          '-keyout',
          key,
          '-out',
          pem,
          '-subj',
          '/CN=tsagent cert/O=Test',
          '-days',
          '2',
        ],
        { env },
      );
      await runOk(tools.openssl, ['x509', '-in', pem, '-outform', 'DER', '-out', `${pem}.der`], { env });
      await runOk(tools.openssl, ['pkey', '-in', key, '-outform', 'DER', '-out', `${key}.der`], { env });
      const p11 = ['--module', '/usr/lib/softhsm/libsofthsm2.so', '--login', '--pin', f.token.pin];
      await runOk(
        tools['pkcs11-tool'],
        [...p11, '--write-object', `${pem}.der`, '--type', 'cert', '--id', '09', '--label', 'cert-object'],
        { env },
      );
      await runOk(
        tools['pkcs11-tool'],
        [...p11, '--write-object', `${key}.der`, '--type', 'privkey', '--id', '09', '--label', 'cert-key'],
        { env },
      );

      const agent = await startAgentDaemon(impl, { env: f.token.env });
      f.defer(() => agent.stop());
      const add = await run(f.bin['ssh-add'], ['-s', '/usr/lib/softhsm/libsofthsm2.so'], {
        env: clientEnv(f, agent, f.token.pin),
      });
      assert.equal(add.code, 0, add.stderr);
      const lines = await list(f, agent);
      assert.equal(lines.length, 3);
      const certLine = lines.find((l) => l.startsWith('384 '));
      assert.match(certLine ?? '', /^384 SHA256:\S+ \/CN=tsagent cert\/O=Test \(ECDSA\)$/);
      const pubs = (await runOk(f.bin['ssh-add'], ['-L'], { env: clientEnv(f, agent, '') })).stdout.split('\n');
      const p384 = join(f.dir, 'p384.pub');
      writeFileSync(p384, `${pubs.find((l) => l.startsWith('ecdsa-sha2-nistp384 '))}\n`);
      const signed = await run(f.bin['ssh-add'], ['-T', p384], { env: clientEnv(f, agent, '') });
      assert.equal(signed.code, 0, signed.stderr);
    });

    it('a wrong PIN fails and costs one attempt: the right PIN works next', async (t) => {
      const f = await fixture(t, impl);
      if (f === undefined) return;
      const agent = await startAgentDaemon(impl, { env: f.token.env });
      f.defer(() => agent.stop());
      const bad = await run(f.bin['ssh-add'], ['-s', '/usr/lib/softhsm/libsofthsm2.so'], { env: clientEnv(f, agent, '000000') });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /Could not add card/);
      assert.deepEqual(await list(f, agent), []);
      const good = await run(f.bin['ssh-add'], ['-s', '/usr/lib/softhsm/libsofthsm2.so'], {
        env: clientEnv(f, agent, f.token.pin),
      });
      assert.equal(good.code, 0, good.stderr);
      assert.deepEqual(await list(f, agent), expectedList(f.token));
    });

    it('the provider allowlist: a module outside it is refused, -P admits it (after realpath)', async (t) => {
      const f = await fixture(t, impl);
      if (f === undefined) return;
      const copy = join(f.dir, 'libcopied-pkcs11.so');
      copyFileSync(f.token.modulePath, copy);
      const agent = await startAgentDaemon(impl, { env: f.token.env });
      f.defer(() => agent.stop());
      const refused = await run(f.bin['ssh-add'], ['-s', copy], { env: clientEnv(f, agent, f.token.pin) });
      assert.equal(refused.code, 1);
      assert.deepEqual(await list(f, agent), []);

      const allowing = await startAgentDaemon(impl, { env: f.token.env, args: ['-P', `${f.dir}/*`] });
      f.defer(() => allowing.stop());
      const ok = await run(f.bin['ssh-add'], ['-s', copy], { env: clientEnv(f, allowing, f.token.pin) });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((await list(f, allowing)).length, 2);
      // The default path is not in this -P list.
      const other = await run(f.bin['ssh-add'], ['-e', copy], { env: clientEnv(f, allowing, '') });
      assert.equal(other.code, 0, other.stderr);
      const outside = await run(f.bin['ssh-add'], ['-s', '/usr/lib/softhsm/libsofthsm2.so'], {
        env: clientEnv(f, allowing, f.token.pin),
      });
      assert.equal(outside.code, 1);
    });

    it('refuses ssh-add -s over a forwarded agent connection (remote addition of providers is disabled)', async (t) => {
      const f = await fixture(t, impl);
      if (f === undefined) return;
      const agent = await startAgentDaemon(impl, { env: f.token.env });
      f.defer(() => agent.stop());
      const fileKey = await generateKey(f.dir, 'ed25519', 'login-key');
      await runOk(f.bin['ssh-add'], [fileKey.privatePath], { env: clientEnv(f, agent, '') });
      const sshd = await startSshd({ authorizedKeys: [fileKey.publicLine] }, t);
      writeFileSync(f.answerFile, `${f.token.pin}\n`, { mode: 0o600 });
      const remote = `env SSH_ASKPASS=${f.askpass} SSH_ASKPASS_REQUIRE=force ssh-add -s /usr/lib/softhsm/libsofthsm2.so`;
      const r = await run(f.bin.ssh, sshd.sshArgs(['-A'], [remote]), { env: sshd.clientEnv(agent.socketPath) });
      assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /Could not add card/);
      assert.equal((await list(f, agent)).length, 1, 'only the file key');
    });

    it('ssh-add -h restricts token keys to a destination like any key', async (t) => {
      const f = await fixture(t, impl);
      if (f === undefined) return;
      const lines = f.token.keys.map((k) => k.publicLine);
      const alpha = await startSshd({ authorizedKeys: lines }, t);
      const beta = await startSshd({ authorizedKeys: lines }, t);
      const knownHosts = join(f.dir, 'known_hosts');
      writeFileSync(knownHosts, `alpha ${alpha.hostKeyPublicLine}\nbeta ${beta.hostKeyPublicLine}\n`);
      const agent = await startAgentDaemon(impl, { env: f.token.env });
      f.defer(() => agent.stop());
      const add = await run(f.bin['ssh-add'], ['-H', knownHosts, '-h', 'alpha', '-s', '/usr/lib/softhsm/libsofthsm2.so'], {
        env: clientEnv(f, agent, f.token.pin),
      });
      assert.equal(add.code, 0, add.stderr);
      const ok = await run(f.bin.ssh, alpha.sshArgs([], ['true']), { env: alpha.clientEnv(agent.socketPath) });
      assert.equal(ok.code, 0, `${ok.stderr}\n--- sshd ---\n${alpha.log().slice(-1500)}`);
      const refused = await run(f.bin.ssh, beta.sshArgs([], ['true']), { env: beta.clientEnv(agent.socketPath) });
      assert.equal(refused.code, 255, 'beta is not a permitted destination');
    });

    it('token keys take part in lock and carry constraints (-c confirm, -t lifetime)', async (t) => {
      const f = await fixture(t, impl);
      if (f === undefined) return;
      // The agent's confirm prompt runs this askpass: it approves (exit 0, empty output).
      const approve = join(f.dir, 'approve');
      writeFileSync(approve, '#!/bin/sh\nexit 0\n');
      chmodSync(approve, 0o700);
      const agent = await startAgentDaemon(impl, { env: { ...f.token.env, SSH_ASKPASS: approve, SSH_ASKPASS_REQUIRE: 'force' } });
      f.defer(() => agent.stop());
      const add = await run(f.bin['ssh-add'], ['-c', '-t', '3600', '-s', '/usr/lib/softhsm/libsofthsm2.so'], {
        env: clientEnv(f, agent, f.token.pin),
      });
      assert.equal(add.code, 0, add.stderr);
      const pub = join(f.dir, 'token-rsa.pub');
      const signed = await run(f.bin['ssh-add'], ['-T', pub], { env: clientEnv(f, agent, '') });
      assert.equal(signed.code, 0, signed.stderr);

      const lock = await run(f.bin['ssh-add'], ['-x'], { env: clientEnv(f, agent, 'lock-pass') });
      assert.equal(lock.code, 0, lock.stderr);
      assert.deepEqual(await list(f, agent), []);
      const lockedSign = await run(f.bin['ssh-add'], ['-T', pub], { env: clientEnv(f, agent, '') });
      assert.notEqual(lockedSign.code, 0);
      const lockedAdd = await run(f.bin['ssh-add'], ['-e', '/usr/lib/softhsm/libsofthsm2.so'], { env: clientEnv(f, agent, '') });
      assert.equal(lockedAdd.code, 1);
      const unlock = await run(f.bin['ssh-add'], ['-X'], { env: clientEnv(f, agent, 'lock-pass') });
      assert.equal(unlock.code, 0, unlock.stderr);
      assert.deepEqual(await list(f, agent), expectedList(f.token));
      const after = await run(f.bin['ssh-add'], ['-T', pub], { env: clientEnv(f, agent, '') });
      assert.equal(after.code, 0, after.stderr);
    });
  });
}

describe('PKCS#11 helper process (tsagent)', () => {
  /** The agent's child processes (its provider helpers). */
  async function helpers(pid: number): Promise<number[]> {
    const r = await run('ps', ['-o', 'pid=', '--ppid', String(pid)]);
    return r.stdout
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
  }

  it('a helper that dies takes only its keys: the agent keeps serving the rest', async (t) => {
    const f = await fixture(t);
    if (f === undefined) return;
    if (requirePeer(t, 'ps') === undefined) return;
    const agent = await startAgentDaemon('tsagent', { env: f.token.env, args: ['-d'] });
    f.defer(() => agent.stop());
    const fileKey = await generateKey(f.dir, 'ed25519', 'file-key');
    await runOk(f.bin['ssh-add'], [fileKey.privatePath], { env: clientEnv(f, agent, '') });
    const add = await run(f.bin['ssh-add'], ['-s', '/usr/lib/softhsm/libsofthsm2.so'], { env: clientEnv(f, agent, f.token.pin) });
    assert.equal(add.code, 0, add.stderr);
    assert.equal((await list(f, agent)).length, 3);

    const pid = agent.child.pid!;
    const kids = await helpers(pid);
    assert.equal(kids.length, 1, 'one helper process for the provider');
    const helper = kids[0];
    // The PIN went over the pipe: not in the helper's argv nor its environment.
    const argv = readFileSync(`/proc/${helper}/cmdline`);
    const environ = readFileSync(`/proc/${helper}/environ`);
    assert.ok(!argv.includes(f.token.pin) && !environ.includes(f.token.pin), 'PIN not in argv/env');

    process.kill(helper, 'SIGKILL');
    await waitFor(async () => (await list(f, agent)).length === 1, { timeoutMs: 10_000 });
    const left = await list(f, agent);
    assert.match(left[0], new RegExp(fileKey.fingerprint.replace(/[+/]/g, '\\$&')));
    const signed = await run(f.bin['ssh-add'], ['-T', fileKey.publicPath], { env: clientEnv(f, agent, '') });
    assert.equal(signed.code, 0, signed.stderr);
    // The provider can be added again: a fresh helper.
    const again = await run(f.bin['ssh-add'], ['-s', '/usr/lib/softhsm/libsofthsm2.so'], {
      env: clientEnv(f, agent, f.token.pin),
    });
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await list(f, agent)).length, 3);
    // A token that hangs (its helper stopped) holds up only its own request.
    const [stuckHelper] = await helpers(pid);
    process.kill(stuckHelper, 'SIGSTOP');
    let settled = false;
    const stuck = run(f.bin['ssh-add'], ['-T', join(f.dir, 'token-rsa.pub')], {
      env: clientEnv(f, agent, ''),
      timeoutMs: 60_000,
    }).finally(() => {
      settled = true;
    });
    try {
      assert.equal((await list(f, agent)).length, 3);
      const other = await run(f.bin['ssh-add'], ['-T', fileKey.publicPath], { env: clientEnv(f, agent, '') });
      assert.equal(other.code, 0, other.stderr);
      assert.equal(settled, false, 'the token signature waits for its stopped helper');
    } finally {
      process.kill(stuckHelper, 'SIGCONT');
    }
    assert.equal((await stuck).code, 0);
    // The daemon's debug log never holds the PIN.
    assert.ok(!agent.stderr().includes(f.token.pin), 'PIN not in the log');
    assert.match(agent.stderr(), /PKCS#11 provider helper exited/);
  });

  it('-P and -O reach the background agent; an unknown -O is a usage error', async (t) => {
    const f = await fixture(t);
    if (f === undefined) return;
    const copy = join(f.dir, 'libbg-pkcs11.so');
    copyFileSync(f.token.modulePath, copy);
    const sock = join(f.dir, 'bg.sock');
    const env = { PATH: process.env.PATH, HOME: f.dir, ...f.token.env };
    const bad = await run(process.execPath, [TSAGENT_BIN, 'start', '-O', 'no-such-option', '-a', sock], { env });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Unknown -O option/);
    const started = await runOk(
      process.execPath,
      [TSAGENT_BIN, 'start', '-s', '-a', sock, '-P', `${f.dir}/*`, '-O', 'allow-remote-pkcs11'],
      { env },
    );
    const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(started.stdout)?.[1]);
    assert.ok(pid > 0, started.stdout);
    f.defer(() => stopPid(pid));
    const bg = { dir: f.dir, socketPath: sock } as AgentDaemon;
    const add = await run(f.bin['ssh-add'], ['-s', copy], { env: clientEnv(f, bg, f.token.pin) });
    assert.equal(add.code, 0, add.stderr);
    assert.equal((await list(f, bg)).length, 2);
  });
});
