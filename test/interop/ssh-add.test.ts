/**
 * Drop-in proof with the real OpenSSH tools: the same `ssh-add` session (every option users
 * script against) runs against OpenSSH's ssh-agent and against tsagent, and must print the
 * same output with the same exit codes. Then git-style SSHSIG signing with `ssh-keygen -Y`.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentImpl, AgentDaemon } from '../helpers/daemons';
import { findPeerOrFail } from '../helpers/peers';
import { run as runPeer } from '../helpers/proc';
import type { RunResult } from '../helpers/proc';

type Result = Omit<RunResult, 'signal'>;

/** Runs a peer (bounded, killed by PID on timeout) and keeps what the comparison needs. */
async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Result> {
  const r = await runPeer(cmd, args, input === undefined ? { env } : { env, input });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

describe('ssh-add and ssh-keygen against tsagent, side by side with OpenSSH', () => {
  let dir: string;
  let sshAdd: string;
  let sshKeygen: string;
  const key = (n: string): string => join(dir, n);
  let askpass: string;
  let passFile: string;

  before(async () => {
    sshAdd = findPeerOrFail('ssh-add');
    sshKeygen = findPeerOrFail('ssh-keygen');
    dir = mkdtempSync(join(tmpdir(), 'tsagent-ssh-add-'));
    const gen = async (name: string, args: string[]): Promise<void> => {
      const r = await run(sshKeygen, ['-q', '-N', '', '-C', `${name}@test`, ...args, '-f', key(name)], process.env);
      assert.equal(r.code, 0, r.stderr);
    };
    await gen('ed', ['-t', 'ed25519']);
    await gen('ec', ['-t', 'ecdsa', '-b', '384']);
    await gen('rsa', ['-t', 'rsa', '-b', '2048']);
    await gen('ca', ['-t', 'ed25519']);
    for (const k of ['ed', 'rsa']) {
      const r = await run(sshKeygen, ['-q', '-s', key('ca'), '-I', `${k}-id`, '-n', 'root', `${key(k)}.pub`], process.env);
      assert.equal(r.code, 0, r.stderr);
    }
    // One askpass for both sides: the agent's confirm prompt is approved, and ssh-add's
    // passphrase prompts (-x/-X) read the passphrase from a file the test controls.
    passFile = join(dir, 'pass');
    askpass = join(dir, 'askpass');
    writeFileSync(askpass, `#!/bin/sh\n[ "$SSH_ASKPASS_PROMPT" = confirm ] && exit 0\ncat '${passFile}'\n`);
    chmodSync(askpass, 0o700);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const askEnv = (): NodeJS.ProcessEnv => ({ SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' });

  /** The scripted session; returns every step's result for comparison. */
  async function session(daemon: AgentDaemon): Promise<Array<[string, Result]>> {
    const env = { PATH: process.env.PATH, HOME: dir, SSH_AUTH_SOCK: daemon.socketPath, ...askEnv() };
    const steps: Array<[string, string[], string?]> = [
      ['list empty', ['-l']],
      ['list keys empty', ['-L']],
      ['add ed25519 (+ its certificate)', [key('ed')]],
      ['add ecdsa with confirm', ['-c', key('ec')]],
      ['add rsa with lifetime (+ certificate)', ['-t', '60', key('rsa')]],
      ['re-add ed25519', [key('ed')]],
      ['list', ['-l']],
      ['list sha256 explicitly', ['-l', '-E', 'sha256']],
      ['list md5', ['-l', '-E', 'md5']],
      ['list public keys', ['-L']],
      ['test-sign ed25519', ['-T', `${key('ed')}.pub`]],
      ['test-sign ecdsa (confirmed by askpass)', ['-T', `${key('ec')}.pub`]],
      ['test-sign rsa', ['-T', `${key('rsa')}.pub`]],
      ['remove rsa (and its certificate)', ['-d', key('rsa')]],
      ['remove absent key', ['-d', key('rsa')]],
      ['lock', ['-x'], 'sekrit'],
      ['list while locked', ['-l']],
      ['unlock with the wrong passphrase', ['-X'], 'wrong'],
      ['unlock', ['-X'], 'sekrit'],
      ['list after unlock', ['-l']],
      ['remove all', ['-D']],
      ['list after remove all', ['-l']],
    ];
    const out: Array<[string, Result]> = [];
    for (const [name, args, pass] of steps) {
      if (pass !== undefined) writeFileSync(passFile, `${pass}\n`);
      const r = await run(sshAdd, args, env);
      out.push([name, { ...r, stderr: r.stderr.split(daemon.socketPath).join('$SOCK') }]);
    }
    return out;
  }

  const results = new Map<AgentImpl, Array<[string, Result]>>();

  for (const impl of ['openssh', 'tsagent'] as const) {
    it(`runs the ssh-add session against ${impl}`, async () => {
      const daemon = await startAgentDaemon(impl, { env: askEnv() });
      try {
        results.set(impl, await session(daemon));
      } finally {
        await daemon.stop();
      }
    });
  }

  it('tsagent answers every ssh-add step exactly like OpenSSH (output and exit code)', () => {
    const ours = results.get('tsagent');
    const theirs = results.get('openssh');
    assert.ok(ours && theirs, 'both sessions ran');
    for (let i = 0; i < theirs.length; i++) {
      assert.deepEqual(ours[i], theirs[i], `step "${theirs[i][0]}"`);
    }
  });

  it('the session itself behaves as ssh-add users expect', () => {
    const r = new Map(results.get('tsagent'));
    assert.equal(r.get('list empty')?.code, 1);
    assert.match(r.get('list empty')!.stdout, /The agent has no identities\./);
    assert.match(
      r.get('add ed25519 (+ its certificate)')!.stderr,
      /Identity added: .*\/ed \(ed@test\)\nCertificate added: .*ed-cert\.pub \(ed-id\)/,
    );
    const list = r.get('list')!;
    assert.equal(list.code, 0);
    // ed25519 key, its certificate, ecdsa, rsa, rsa certificate
    assert.equal(list.stdout.trim().split('\n').length, 5, list.stdout);
    const pubs = r.get('list public keys')!.stdout;
    assert.ok(pubs.includes(readFileSync(`${key('ed')}.pub`, 'utf8').split(' ')[1]));
    assert.ok(pubs.includes(readFileSync(`${key('ed')}-cert.pub`, 'utf8').split(' ')[1]));
    for (const k of ['test-sign ed25519', 'test-sign ecdsa (confirmed by askpass)', 'test-sign rsa'])
      assert.equal(r.get(k)?.code, 0, k);
    assert.equal(r.get('remove absent key')?.code, 1);
    assert.match(r.get('lock')!.stderr, /Agent locked\./);
    assert.equal(r.get('list while locked')?.code, 1);
    assert.equal(r.get('unlock with the wrong passphrase')?.code, 1);
    assert.match(r.get('unlock')!.stderr, /Agent unlocked\./);
    assert.equal(r.get('list after unlock')?.stdout.trim().split('\n').length, 3);
    assert.match(r.get('remove all')!.stderr, /All identities removed\./);
    assert.equal(r.get('list after remove all')?.code, 1);
  });

  for (const k of ['ed', 'rsa', 'ec'] as const) {
    it(`ssh-keygen -Y sign through tsagent (${k}, as git signs commits) verifies with -Y verify`, async () => {
      const daemon = await startAgentDaemon('tsagent', { env: askEnv() });
      try {
        const env = { PATH: process.env.PATH, HOME: dir, SSH_AUTH_SOCK: daemon.socketPath, ...askEnv() };
        assert.equal((await run(sshAdd, [key(k)], env)).code, 0);
        const msg = join(dir, `msg-${k}`);
        writeFileSync(msg, 'tree 0123456789abcdef\nauthor test\n\na commit\n');
        const signed = await run(sshKeygen, ['-Y', 'sign', '-f', `${key(k)}.pub`, '-n', 'git', msg], env);
        assert.equal(signed.code, 0, signed.stderr);
        const signers = join(dir, `allowed-${k}`);
        writeFileSync(signers, `signer@test ${readFileSync(`${key(k)}.pub`, 'utf8')}`);
        const content = readFileSync(msg, 'utf8');
        const verified = await run(
          sshKeygen,
          ['-Y', 'verify', '-f', signers, '-I', 'signer@test', '-n', 'git', '-s', `${msg}.sig`],
          env,
          content,
        );
        assert.equal(verified.code, 0, verified.stderr + verified.stdout);
        assert.match(verified.stdout, /Good "git" signature for signer@test/);
        const check = await run(sshKeygen, ['-Y', 'check-novalidate', '-n', 'git', '-s', `${msg}.sig`], env, content);
        assert.equal(check.code, 0, check.stderr);
        const tampered = await run(
          sshKeygen,
          ['-Y', 'verify', '-f', signers, '-I', 'signer@test', '-n', 'git', '-s', `${msg}.sig`],
          env,
          content + 'x',
        );
        assert.notEqual(tampered.code, 0);
      } finally {
        await daemon.stop();
      }
    });
  }
});
