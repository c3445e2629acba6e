/**
 * The known_hosts resolver against files made by real ssh-keygen: host keys generated with
 * `ssh-keygen`, plain entries written, hashed with `ssh-keygen -H -f FILE`, host certificates
 * signed with `ssh-keygen -s -h`; every name lookup is checked against `ssh-keygen -F`.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildDestination, hostKeyFingerprint, withUser } from '../../src/context/destination';
import { lookupName } from '../../src/context/host-patterns';
import { KnownHostsResolver, knownHostsFiles } from '../../src/context/known-hosts';
import { configCandidates, peerCandidates, sshArgvCandidates } from '../../src/context/ssh-argv';
import { SshWriter } from '../../src/protocol/wire';
import { generateKey, makeCA, parsePublicLine, signHostCert } from '../helpers/keys';
import type { GeneratedKey } from '../helpers/keys';
import { findPeerOrFail } from '../helpers/peers';
import { cleanEnv, removeDir, run, runOk, tempDir } from '../helpers/proc';

const keygen = (): string => findPeerOrFail('ssh-keygen');

/** `ssh-keygen -F lookup -f file`: does OpenSSH find a line for this name? (exit 0 = found) */
async function keygenFinds(file: string, name: string, port: number | null): Promise<boolean> {
  const r = await run(keygen(), ['-F', lookupName(name, port), '-f', file], { env: cleanEnv() });
  return r.code === 0 && r.stdout.includes('found:');
}

function keyField(k: GeneratedKey): string {
  return k.publicLine.split(' ').slice(0, 2).join(' ');
}

describe('known_hosts resolver (real ssh-keygen files)', () => {
  let dir: string;
  let home: string;
  let sys: string;
  let alpha: GeneratedKey;
  let beta: GeneratedKey;
  let gamma: GeneratedKey;
  let unknown: GeneratedKey;
  let revokedKey: GeneratedKey;

  before(async () => {
    dir = await tempDir('tsagent-kh-');
    home = join(dir, 'home');
    sys = join(dir, 'etc');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    mkdirSync(sys);
    [alpha, beta, gamma, unknown, revokedKey] = await Promise.all([
      generateKey(dir, 'ed25519', 'alpha'),
      generateKey(dir, 'ecdsa-256', 'beta'),
      generateKey(dir, 'ed25519', 'gamma'),
      generateKey(dir, 'ed25519', 'unknown'),
      generateKey(dir, 'ed25519', 'revoked'),
    ]);
  });
  after(() => removeDir(dir));

  it('the default files are the four OpenSSH reads, plus extras with ~ expanded', () => {
    assert.deepEqual(knownHostsFiles({ home: '/h', extraFiles: ['~/.ssh/work', '/abs'] }), [
      '/h/.ssh/known_hosts',
      '/h/.ssh/known_hosts2',
      '/etc/ssh/ssh_known_hosts',
      '/etc/ssh/ssh_known_hosts2',
      '/h/.ssh/work',
      '/abs',
    ]);
  });

  it('plain entries: names, [host]:port, comma lists, negation, wildcards — agrees with ssh-keygen -F', async () => {
    const file = join(home, '.ssh', 'known_hosts');
    writeFileSync(
      file,
      [
        '# a comment',
        `alpha.example,alpha,192.0.2.1 ${keyField(alpha)}`,
        `[beta.example]:2222 ${keyField(beta)} beta comment`,
        `*.corp.example,!evil.corp.example ${keyField(gamma)}`,
        'garbage line',
        '',
      ].join('\n'),
    );
    const r = new KnownHostsResolver({ home, systemDir: sys, checkIntervalMs: 0 });
    const cases: Array<[string, number | null, Buffer, boolean]> = [
      ['alpha.example', null, alpha.blob, true],
      ['ALPHA', 22, alpha.blob, true],
      ['192.0.2.1', null, alpha.blob, true],
      ['alpha.example', 2222, alpha.blob, false],
      ['beta.example', 2222, beta.blob, true],
      ['beta.example', null, beta.blob, false],
      ['alpha.example', null, beta.blob, false],
      ['db.corp.example', null, gamma.blob, true],
      ['evil.corp.example', null, gamma.blob, false],
      ['nowhere', null, unknown.blob, false],
    ];
    for (const [name, port, blob, want] of cases) {
      assert.equal(r.nameHasKey(name, port, blob), want, `${name}:${port}`);
      // ssh-keygen -F finds the *line* for the name; combined with "that line carries this key":
      const found = await keygenFinds(file, name, port);
      if (want) assert.equal(found, true, `ssh-keygen -F ${name} finds it too`);
    }
    assert.equal(await keygenFinds(file, 'evil.corp.example', null), false, 'ssh-keygen agrees on the negation');
    assert.deepEqual(r.namesFor(alpha.blob), { names: ['alpha.example', 'alpha', '192.0.2.1'], port: null });
    assert.deepEqual(r.namesFor(beta.blob), { names: ['beta.example'], port: 2222 });
    // Wildcards give no names by themselves; a candidate they match is proven, a negated one is not.
    assert.deepEqual(r.namesFor(gamma.blob), { names: [], port: null });
    assert.deepEqual(
      r.namesFor(gamma.blob, [
        { name: 'db.corp.example', port: null },
        { name: 'evil.corp.example', port: null },
      ]),
      {
        names: ['db.corp.example'],
        port: null,
      },
    );
    assert.deepEqual(r.namesFor(unknown.blob, [{ name: 'alpha.example', port: null }]), { names: [], port: null });
    // A candidate the lines confirm comes first (it is what the user typed).
    assert.deepEqual(r.namesFor(alpha.blob, [{ name: 'alpha', port: null }]).names[0], 'alpha');
  });

  it('hashed entries (ssh-keygen -H): name -> key by HMAC, key -> names only for candidates', async () => {
    const file = join(dir, 'hashed_known_hosts');
    writeFileSync(file, `alpha.example ${keyField(alpha)}\n[beta.example]:2222 ${keyField(beta)}\n`);
    await runOk(keygen(), ['-H', '-f', file], { env: cleanEnv() });
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes('alpha.example') && text.includes('|1|'), 'ssh-keygen hashed the names');
    const r = new KnownHostsResolver({ home: join(dir, 'nohome'), systemDir: sys, extraFiles: [file], checkIntervalMs: 0 });
    for (const [name, port, blob, want] of [
      ['alpha.example', null, alpha.blob, true],
      ['Alpha.Example', null, alpha.blob, true],
      ['beta.example', 2222, beta.blob, true],
      ['beta.example', null, beta.blob, false],
      ['alpha.example', null, beta.blob, false],
    ] as const) {
      assert.equal(r.nameHasKey(name, port, blob), want, `${name}:${port}`);
      assert.equal(await keygenFinds(file, name, port), name.toLowerCase() === 'alpha.example' ? port === null : port === 2222);
    }
    assert.deepEqual(r.namesFor(alpha.blob), { names: [], port: null }, 'hashed names are not readable');
    const cands = sshArgvCandidates(['ssh', '-p', '2222', 'me@beta.example', 'uptime']);
    assert.deepEqual(r.namesFor(beta.blob, cands), { names: ['beta.example'], port: 2222 });
    assert.deepEqual(r.namesFor(alpha.blob, cands), { names: [], port: null }, 'an unconfirmed candidate is dropped');
    assert.deepEqual(r.namesFor(alpha.blob, configCandidates(['alpha.example', '*.example', '[x]:1'])).names, ['alpha.example']);
  });

  it('@cert-authority: a host certificate signed by the CA is proven for its principals; @revoked gives no names', async () => {
    const ca = await makeCA(dir);
    const hostKey = await generateKey(dir, 'ed25519', 'certhost');
    const certPath = await signHostCert(ca, hostKey.publicPath, { principals: ['cert.example', 'other.example'], identity: 'h' });
    const certBlob = parsePublicLine(readFileSync(certPath, 'utf8').trim()).blob;
    const file = join(sys, 'ssh_known_hosts');
    writeFileSync(
      file,
      `@cert-authority *.example ${keyField(ca)}\n@revoked * ${keyField(revokedKey)}\nrevoked.example ${keyField(revokedKey)}\n`,
    );
    const r = new KnownHostsResolver({ home: join(dir, 'nohome'), systemDir: sys, checkIntervalMs: 0 });
    assert.equal(r.nameHasKey('cert.example', null, certBlob), true);
    assert.equal(r.nameHasKey('other.example', null, certBlob), true);
    assert.equal(r.nameHasKey('stranger.example', null, certBlob), false, 'not a principal of the certificate');
    assert.equal(r.nameHasKey('cert.example', null, hostKey.blob), false, 'the plain key is not under the CA line');
    assert.deepEqual(r.namesFor(certBlob, [{ name: 'cert.example', port: null }]), { names: ['cert.example'], port: null });
    // ssh-keygen -F sees the CA line for the name, as OpenSSH does.
    assert.equal(await keygenFinds(file, 'cert.example', null), true);
    // Revoked: the plain line names it, but the key gets no names and matches no name.
    assert.equal(r.revokedKey(revokedKey.blob), true);
    assert.equal(r.nameHasKey('revoked.example', null, revokedKey.blob), false);
    assert.deepEqual(r.namesFor(revokedKey.blob, [{ name: 'revoked.example', port: null }]), { names: [], port: null });
    // Revoking the CA revokes what it signed.
    appendFileSync(file, `@revoked * ${keyField(ca)}\n`);
    assert.equal(r.nameHasKey('cert.example', null, certBlob), false);
  });

  it('re-reads a file when it changes, and sees a file that appears later', async () => {
    const home2 = join(dir, 'home2');
    mkdirSync(join(home2, '.ssh'), { recursive: true });
    const r = new KnownHostsResolver({ home: home2, systemDir: join(dir, 'none'), checkIntervalMs: 0 });
    assert.deepEqual(r.namesFor(alpha.blob).names, []);
    const file = join(home2, '.ssh', 'known_hosts2');
    writeFileSync(file, `first.example ${keyField(alpha)}\n`);
    assert.deepEqual(r.namesFor(alpha.blob).names, ['first.example']);
    writeFileSync(file, `second.example,third.example ${keyField(alpha)}\n`);
    assert.deepEqual(r.namesFor(alpha.blob).names, ['second.example', 'third.example']);
    assert.equal(r.nameHasKey('first.example', null, alpha.blob), false);
  });

  it('HOME comes from the environment by default', () => {
    const saved = process.env.HOME;
    process.env.HOME = '/some/home';
    try {
      assert.equal(knownHostsFiles()[0], '/some/home/.ssh/known_hosts');
    } finally {
      process.env.HOME = saved;
    }
  });

  it('costs with a 2000-line hashed file (diagnostic, not asserted)', async (t) => {
    const file = join(dir, 'big_known_hosts');
    const lines: string[] = [];
    for (let i = 0; i < 1999; i++) {
      const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
      const blob = new SshWriter().string('ssh-ed25519').string(raw).finish();
      lines.push(`host${i}.example ssh-ed25519 ${blob.toString('base64')}`);
    }
    lines.push(`target.example ${keyField(alpha)}`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    await runOk(keygen(), ['-H', '-f', file], { env: cleanEnv() });
    const r = new KnownHostsResolver({ home: join(dir, 'nohome'), systemDir: join(dir, 'no-etc'), extraFiles: [file] });
    let t0 = process.hrtime.bigint();
    r.preload();
    const first = r.namesFor(alpha.blob, [{ name: 'target.example', port: null }]);
    const parse = Number(process.hrtime.bigint() - t0) / 1000;
    assert.deepEqual(first.names, ['target.example']);
    const n = 2000;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) r.namesFor(alpha.blob, [{ name: 'target.example', port: null }]);
    const cached = Number(process.hrtime.bigint() - t0) / n / 1000;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) r.nameHasKey(`name${i}.example`, null, alpha.blob);
    const uncached = Number(process.hrtime.bigint() - t0) / n / 1000;
    t.diagnostic(
      `known_hosts 2000 hashed lines: preload (read+parse) and first lookup ${parse.toFixed(0)} µs, cached namesFor ${cached.toFixed(2)} µs, new name nameHasKey ${uncached.toFixed(2)} µs`,
    );
  });

  it('buildDestination: last hop names, forwarded flag, via hops by name or fingerprint', () => {
    const file = join(dir, 'dest_known_hosts');
    writeFileSync(file, `bastion.example ${keyField(alpha)}\n[inner.example]:2200 ${keyField(beta)}\n`);
    const r = new KnownHostsResolver({ home: join(dir, 'nohome'), systemDir: sys, extraFiles: [file], checkIntervalMs: 0 });
    assert.equal(
      buildDestination([], (b) => r.namesFor(b)),
      null,
    );
    const direct = buildDestination([{ hostKey: { blob: beta.blob }, forwarded: false }], (b) => r.namesFor(b));
    assert.deepEqual(direct, {
      hostKey: beta.fingerprint,
      names: ['inner.example'],
      host: 'inner.example',
      port: 2200,
      user: null,
      forwarded: false,
      via: [],
    });
    const hops = [
      { hostKey: { blob: gamma.blob }, forwarded: true },
      { hostKey: { blob: alpha.blob }, forwarded: true },
      { hostKey: { blob: unknown.blob }, forwarded: false },
    ];
    const fwd = buildDestination(hops, (b) => r.namesFor(b), 'root');
    assert.deepEqual(fwd, {
      hostKey: unknown.fingerprint,
      names: [],
      host: null,
      port: null,
      user: 'root',
      forwarded: true,
      via: [gamma.fingerprint, 'bastion.example'],
    });
    assert.equal(withUser(direct, 'git')?.user, 'git');
    assert.equal(withUser(null, 'git'), null);
    // Equal destinations are one object, so caches by destination hold across connections.
    const again = buildDestination([{ hostKey: { blob: beta.blob }, forwarded: false }], (b) => r.namesFor(b));
    assert.equal(again, direct);
    assert.equal(withUser(again, 'git'), withUser(direct, 'git'));
    assert.notEqual(withUser(direct, 'git'), withUser(direct, 'gi'));
    assert.notEqual(
      buildDestination([{ hostKey: { blob: beta.blob }, forwarded: true }], (b) => r.namesFor(b)),
      direct,
    );
    // A long user (the client chooses it) is not kept: equal, but not the same object.
    const long = 'u'.repeat(5000);
    assert.notEqual(withUser(direct, long), withUser(direct, long));
    assert.deepEqual(withUser(direct, long), withUser(direct, long));
    // A known_hosts change that alters the names gives another destination.
    writeFileSync(file, `bastion.example ${keyField(alpha)}\n[inner.example]:2200,other.example ${keyField(beta)}\n`);
    const renamed = buildDestination([{ hostKey: { blob: beta.blob }, forwarded: false }], (b) => r.namesFor(b));
    assert.notEqual(renamed, direct);
    assert.deepEqual(renamed?.names, ['inner.example', 'other.example']);
  });

  it('a host certificate is fingerprinted by its plain key, as ssh-keygen -l does', async () => {
    const ca = await makeCA(dir);
    const hk = await generateKey(dir, 'ed25519', 'fp');
    const certPath = await signHostCert(ca, hk.publicPath, { principals: ['fp.example'], identity: 'fp' });
    const certBlob = parsePublicLine(readFileSync(certPath, 'utf8').trim()).blob;
    const out = await runOk(keygen(), ['-l', '-E', 'sha256', '-f', certPath], { env: cleanEnv() });
    assert.ok(out.stdout.includes(hostKeyFingerprint(certBlob)));
    assert.equal(hostKeyFingerprint(certBlob), hk.fingerprint);
  });
});

describe('ssh argv candidates', () => {
  it('finds the destination past options that take arguments', () => {
    assert.deepEqual(sshArgvCandidates(['ssh', '-i', 'id', '-l', 'me', '-o', 'LogLevel=ERROR', 'host.example', 'ls', '-l']), [
      { name: 'host.example', port: null },
    ]);
    assert.deepEqual(sshArgvCandidates(['ssh', '-Ap2222', 'git@Host.Example']), [{ name: 'host.example', port: 2222 }]);
    assert.deepEqual(sshArgvCandidates(['ssh', 'h', '-p', '2200']), [{ name: 'h', port: 2200 }], 'options after the destination');
    assert.deepEqual(sshArgvCandidates(['ssh', '-p', '22', 'h']), [{ name: 'h', port: null }]);
    assert.deepEqual(sshArgvCandidates(['ssh', 'ssh://u@h.example:2022']), [{ name: 'h.example', port: 2022 }]);
    assert.deepEqual(sshArgvCandidates(['ssh', 'ssh://[2001:db8::1]:2022']), [{ name: '2001:db8::1', port: 2022 }]);
    assert.deepEqual(sshArgvCandidates(['ssh', '-oPort=2022', '--', 'h']), [{ name: 'h', port: 2022 }]);
    assert.deepEqual(sshArgvCandidates(['ssh', '-o', 'HostKeyAlias=alias', 'h']), [
      { name: 'h', port: null },
      { name: 'alias', port: null },
    ]);
    assert.deepEqual(sshArgvCandidates(['ssh', '-J', 'jump', '-W', 'x:22', 'target']), [{ name: 'target', port: null }]);
    assert.deepEqual(sshArgvCandidates(['ssh']), []);
    assert.deepEqual(sshArgvCandidates(['ssh', '-p']), []);
  });

  it('only an ssh peer gives candidates', () => {
    const base = { pid: 1, uid: 1, unit: null, parents: [] };
    assert.deepEqual(peerCandidates({ ...base, exe: '/usr/bin/ssh', argv: ['ssh', 'h'] }), [{ name: 'h', port: null }]);
    assert.deepEqual(peerCandidates({ ...base, exe: '/usr/bin/git', argv: ['git', 'h'] }), []);
    assert.deepEqual(peerCandidates({ ...base, exe: null, argv: null }), []);
    assert.deepEqual(peerCandidates(null), []);
  });
});
