/**
 * The client module against real agents — tsagent's daemon and OpenSSH's ssh-agent: keys
 * added with AgentClient.addKey (files, encrypted files, contents, KeyObjects, certificates,
 * lifetime and confirm constraints), listed by getKeys with the bits and fingerprints
 * `ssh-keygen -l` and `ssh-add -l` print, signatures checked by `ssh-keygen -Y
 * check-novalidate` (SSHSIG) and node:crypto.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { AgentClient } from '../../src/client/agent-client';
import { AgentKey } from '../../src/client/agent-key';
import { getKeys } from '../../src/client/get-keys';
import { AgentFailureError, InvalidKeyError } from '../../src/errors';
import { SshReader } from '../../src/protocol/wire';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentImpl, AgentDaemon } from '../helpers/daemons';
import { generateKey, makeCA, signUserCert } from '../helpers/keys';
import type { GeneratedKey, KeyType } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, removeDir, run, runOk, tempDir, waitFor } from '../helpers/proc';
import { sshsigArmor, sshsigSignedData } from '../helpers/sshsig';

const PEERS = ['ssh-keygen', 'ssh-add', 'ssh-agent'] as const;
const PLAIN: readonly KeyType[] = ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa-2048'];
const DATA = Buffer.from('data to sign through AgentKey');
const NAMESPACE = 'file';

interface KeygenLine {
  readonly bits: number;
  readonly fingerprint: string;
  readonly comment: string;
}

/** `ssh-keygen -l` / `ssh-add -l` line: `bits fingerprint comment (TYPE)`. */
function parseListing(line: string): KeygenLine {
  const m = /^(\d+) (\S+) (.*) \([A-Z0-9-]+\)$/.exec(line.trim());
  assert.ok(m, `unexpected listing line: ${line}`);
  return { bits: Number(m[1]), fingerprint: m[2], comment: m[3] };
}

function sigAlgorithm(sig: Buffer): string {
  return new SshReader(sig).text();
}

for (const impl of ['tsagent', 'openssh'] as const satisfies readonly AgentImpl[]) {
  describe(`client against ${impl}`, () => {
    let dir: string;
    let daemon: AgentDaemon;
    let client: AgentClient;
    let approveFile: string;
    /** Per identity in agent order: the file ssh-keygen -l reads for it. */
    const expected: Array<{ file: string; certificate: boolean }> = [];
    const keys: Partial<Record<KeyType, GeneratedKey>> = {};
    let ca: GeneratedKey;

    before(async () => {
      dir = await tempDir('tsagent-client-');
      approveFile = join(dir, 'approve');
      const askpass = join(dir, 'askpass');
      writeFileSync(askpass, `#!/bin/sh\n[ -f '${approveFile}' ] && exit 0\nexit 1\n`);
      chmodSync(askpass, 0o700);
      daemon = await startAgentDaemon(impl, { env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' } });
      client = new AgentClient({ socketPath: daemon.socketPath, timeoutMs: 15_000 });
      ca = await makeCA(dir);
      for (const type of PLAIN) keys[type] = await generateKey(dir, type, `client-${type}`);
      // Agent order: ed25519, its certificate, the ECDSA keys, RSA, its certificate.
      for (const type of PLAIN) {
        const key = keys[type]!;
        const withCert = type === 'ed25519' || type === 'rsa-2048';
        const cert = withCert
          ? await signUserCert(ca, key.publicPath, { principals: ['tester'], identity: `cert-${type}` })
          : undefined;
        const added = await client.addKey({ path: key.privatePath }, cert !== undefined ? { certificate: cert } : {});
        assert.equal(added.length, withCert ? 2 : 1);
        expected.push({ file: key.publicPath, certificate: false });
        if (cert !== undefined) expected.push({ file: cert, certificate: true });
      }
    });
    after(async () => {
      client?.close();
      await daemon?.stop();
      if (dir) await removeDir(dir);
    });

    const peers = (t: TestContext): boolean => requirePeers(t, PEERS) !== undefined;

    it('getKeys lists every identity in order, with the bits and fingerprints ssh-keygen -l prints', async (t) => {
      if (!peers(t)) return;
      const listed = await getKeys({ socketPath: daemon.socketPath });
      assert.equal(listed.length, expected.length);
      for (const [i, key] of listed.entries()) {
        const { file, certificate } = expected[i];
        const fields = readFileSync(file, 'utf8').trim().split(/\s+/);
        assert.equal(key.type, fields[0]);
        assert.equal(key.base64, fields[1]);
        assert.equal(key.type.endsWith('-cert-v01@openssh.com'), certificate);
        assert.ok(key.canSign());
        for (const hash of ['md5', 'sha256'] as const) {
          const r = await runOk('ssh-keygen', ['-l', '-E', hash, '-f', file], { env: cleanEnv() });
          const line = parseListing(r.stdout);
          assert.equal(key.fingerprint(hash), line.fingerprint, `${file} ${hash}`);
          assert.equal(key.bits, line.bits, `${file} bits`);
        }
        assert.equal(key.fingerprint(), key.fingerprint('sha256'));
        assert.equal(key.toString(), `${fields[0]} ${fields[1]} ${key.comment}`);
      }
    });

    it('matches ssh-add -l line for line (md5 and sha256)', async (t) => {
      if (!peers(t)) return;
      const listed = await client.getKeys();
      for (const hash of ['md5', 'sha256'] as const) {
        const r = await runOk('ssh-add', ['-l', '-E', hash], { env: cleanEnv({ SSH_AUTH_SOCK: daemon.socketPath }) });
        const lines = r.stdout.trim().split('\n').map(parseListing);
        assert.deepEqual(
          listed.map((k) => ({ bits: k.bits, fingerprint: k.fingerprint(hash), comment: k.comment })),
          lines,
        );
      }
    });

    it('AgentKey.sign: node:crypto verifies, and ssh-keygen -Y check-novalidate accepts the SSHSIG', async (t) => {
      if (!peers(t)) return;
      for (const key of await client.getKeys()) {
        const sig = await key.sign(DATA);
        assert.ok(key.verify(DATA, sig), `${key.type} verifies`);
        assert.ok(!key.verify(Buffer.from('other data'), sig), `${key.type} refuses other data`);
        await checkSshsig(dir, key, impl);
      }
    });

    it('RSA keys sign with the algorithm asked for (rsa-sha2-512 by default)', async (t) => {
      if (!peers(t)) return;
      const rsa = (await client.getKeys()).filter((k) => k.type.startsWith('ssh-rsa'));
      assert.equal(rsa.length, 2, 'the RSA key and its certificate');
      for (const key of rsa) {
        assert.equal(sigAlgorithm(await key.sign(DATA)), 'rsa-sha2-512');
        for (const algorithm of ['rsa-sha2-256', 'rsa-sha2-512', 'ssh-rsa'] as const) {
          const sig = await key.sign(DATA, { algorithm });
          assert.equal(sigAlgorithm(sig), algorithm);
          assert.ok(key.verify(DATA, sig));
        }
        await checkSshsig(dir, key, impl, 'rsa-sha2-256');
      }
    });

    it('loadCertificate turns a held key and its -cert.pub into a certificate identity', async (t) => {
      if (!peers(t)) return;
      const key = keys['ecdsa-384']!;
      const certPath = await signUserCert(ca, key.publicPath, { principals: ['tester'], identity: 'loaded' });
      const held = (await client.getKeys()).find((k) => k.base64 === key.blob.toString('base64'));
      assert.ok(held);
      for (const source of [certPath, readFileSync(certPath, 'utf8')]) {
        const cert = held.loadCertificate(source);
        assert.equal(cert.type, 'ecdsa-sha2-nistp384-cert-v01@openssh.com');
        assert.equal(cert.base64, readFileSync(certPath, 'utf8').split(/\s+/)[1]);
        assert.equal(cert.fingerprint('md5'), held.fingerprint('md5'));
        const line = parseListing((await runOk('ssh-keygen', ['-l', '-f', certPath], { env: cleanEnv() })).stdout);
        assert.equal(cert.fingerprint(), line.fingerprint);
        assert.equal(cert.bits, line.bits);
        // The agent holds only the plain key: the certificate identity signs through it.
        const sig = await cert.sign(DATA);
        assert.ok(cert.verify(DATA, sig));
        await checkSshsig(dir, cert, impl);
      }
      const otherCert = expected.find((e) => e.certificate)!.file; // the ed25519 key's certificate
      assert.throws(() => held.loadCertificate(otherCert), InvalidKeyError);
    });

    it('toSshpk gives the sshpk Key with the same fingerprint', async (t) => {
      if (!peers(t)) return;
      for (const key of await client.getKeys()) {
        const k = key.toSshpk();
        assert.equal(k.fingerprint('sha256').toString(), key.fingerprint('sha256'));
        assert.equal(k.comment, key.comment);
      }
    });

    it('addKey: file contents, KeyObject, encrypted file with passphrase', async (t) => {
      if (!peers(t)) return;
      const other = await generateKey(dir, 'ecdsa-256', 'file comment');
      const [fromContents] = await client.addKey({ contents: readFileSync(other.privatePath) }, { comment: 'from contents' });
      assert.equal(fromContents.base64, other.blob.toString('base64'));
      assert.equal(fromContents.comment, 'from contents');

      const keyObject = generateKeyPairSync('ed25519').privateKey;
      const [fromObject] = await client.addKey(keyObject, { comment: 'from KeyObject' });
      const listed = await client.getKeys();
      const found = listed.find((k) => k.blob.equals(fromObject.blob));
      assert.equal(found?.comment, 'from KeyObject');
      assert.ok(found.verify(DATA, await found.sign(DATA)));

      const passphrase = 'correct horse battery';
      const enc = await generateKey(dir, 'ed25519', 'encrypted', { passphrase });
      await assert.rejects(
        client.addKey({ path: enc.privatePath }),
        (e: unknown) => e instanceof InvalidKeyError && /passphrase/.test(e.message),
      );
      await assert.rejects(client.addKey({ path: enc.privatePath, passphrase: 'wrong horse' }), (e: unknown) => {
        assert.ok(e instanceof InvalidKeyError);
        assert.ok(!String(e.stack).includes('wrong horse'), 'the passphrase is never in an error');
        return true;
      });
      const [decrypted] = await client.addKey({ path: enc.privatePath, passphrase });
      assert.equal(decrypted.comment, 'encrypted');
      assert.equal(decrypted.base64, enc.blob.toString('base64'));

      await client.remove(fromContents.blob);
      await client.remove(fromObject.blob);
      await client.remove(decrypted.blob);
      assert.equal((await client.list()).length, expected.length);
    });

    it('addKey with a lifetime: the agent drops the key when it expires', async (t) => {
      if (!peers(t)) return;
      const [key] = await client.addKey(generateKeyPairSync('ed25519').privateKey, {
        lifetimeSeconds: 3, // long enough to list it first on a loaded machine
        comment: 'short-lived',
      });
      assert.ok((await client.list()).some((i) => i.blob.equals(key.blob)));
      await waitFor(async () => !(await client.list()).some((i) => i.blob.equals(key.blob)), {
        timeoutMs: 15_000,
        intervalMs: 200,
        what: 'the key to expire',
      });
    });

    it('addKey with confirm: each signature asks $SSH_ASKPASS', async (t) => {
      if (!peers(t)) return;
      const [key] = await client.addKey(generateKeyPairSync('ed25519').privateKey, { confirm: true, comment: 'confirm me' });
      writeFileSync(approveFile, '');
      assert.ok(key.verify(DATA, await key.sign(DATA)));
      rmSync(approveFile);
      await assert.rejects(key.sign(DATA), AgentFailureError);
      await client.remove(key.blob);
    });

    it('query: the extensions the agent names ([] when it has no query)', async (t) => {
      if (!peers(t)) return;
      const names = await client.query();
      assert.ok(Array.isArray(names));
      if (impl === 'tsagent') assert.ok(names.includes('query') && names.includes('session-bind@openssh.com'), names.join(','));
    });

    it('close() ends the connection; the next call opens a new one', async (t) => {
      if (!peers(t)) return;
      const before = await client.list();
      client.close();
      assert.deepEqual(await client.list(), before);
    });

    it("an idle client does not keep Node running (the socket is unref'd between requests)", async (t) => {
      if (!peers(t)) return;
      const script = [
        `const { getKeys, AgentClient } = require(${JSON.stringify(join(__dirname, '../../src/index.js'))});`,
        '(async () => {',
        '  const keys = await getKeys();',
        "  await keys[0].sign(Buffer.from('x'));",
        '  const client = new AgentClient();',
        '  await client.list();',
        "  console.log('done', keys.length);",
        '})();',
      ].join('\n');
      // Neither the keys' connection nor the client is closed: the child must still exit.
      const r = await run(process.execPath, ['-e', script], {
        env: cleanEnv({ SSH_AUTH_SOCK: daemon.socketPath }),
        timeoutMs: 15_000,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), `done ${expected.length}`);
    });
  });
}

/** Signs an SSHSIG with `key` and has `ssh-keygen -Y check-novalidate` check it. */
async function checkSshsig(dir: string, key: AgentKey, impl: string, algorithm?: 'rsa-sha2-256'): Promise<void> {
  const message = Buffer.from(`a message signed by ${key.type} through ${impl}\n`);
  const sig = await key.sign(sshsigSignedData(NAMESPACE, message), algorithm !== undefined ? { algorithm } : {});
  const sigFile = join(dir, `sig-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  writeFileSync(sigFile, sshsigArmor(key.blob, NAMESPACE, sig));
  try {
    const r = await run('ssh-keygen', ['-Y', 'check-novalidate', '-n', NAMESPACE, '-s', sigFile], {
      input: message,
      env: cleanEnv(),
    });
    assert.equal(r.code, 0, `${key.type}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout + r.stderr, new RegExp(`Good "${NAMESPACE}" signature`));
  } finally {
    if (existsSync(sigFile)) rmSync(sigFile);
  }
}
