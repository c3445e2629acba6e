/**
 * AgentKey and the client's request building, in process over the real keyring (an Agent
 * like any other). Fingerprints and bits against ssh-keygen, and signatures against real
 * agents, are in test/interop/client.test.ts.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Agent } from '../../src/agent/agent';
import { Keyring } from '../../src/agent/keyring';
import { AgentSession } from '../../src/agent/session';
import { buildAddRequests } from '../../src/client/add-key';
import { AgentKey } from '../../src/client/agent-key';
import { parseQueryReply } from '../../src/client/query';
import { AgentProtocolError, InvalidKeyError, ProtocolError, UnsupportedKeyError, UsageError } from '../../src/errors';
import { SshReader, SshWriter } from '../../src/protocol/wire';
import { certifiedKey, testKey } from '../helpers/keys';

const DATA = Buffer.from('unit data');
const s = AgentSession.inProcess();
const algorithmOf = (sig: Buffer): string => new SshReader(sig).text();

async function held(keyring: Keyring, name: 'ed25519' | 'rsa-2048' | 'ecdsa-521', comment = 'unit'): Promise<AgentKey> {
  const key = testKey(name);
  await keyring.add({ key: key.body, comment }, s);
  return new AgentKey(keyring, { blob: key.blob, comment });
}

describe('AgentKey', () => {
  it('describes the key: type, base64, toString, bits', async () => {
    const keyring = new Keyring();
    const ed = await held(keyring, 'ed25519', 'me@host');
    assert.equal(ed.type, 'ssh-ed25519');
    assert.equal(ed.toString(), `ssh-ed25519 ${ed.base64} me@host`);
    assert.equal(new AgentKey(keyring, { blob: ed.blob, comment: '' }).toString(), `ssh-ed25519 ${ed.base64}`);
    assert.equal(ed.bits, 256);
    assert.equal((await held(keyring, 'rsa-2048')).bits, 2048);
    assert.equal((await held(keyring, 'ecdsa-521')).bits, 521);
    assert.match(ed.fingerprint('md5'), /^MD5:([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    assert.match(ed.fingerprint(), /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('copies the blob it is given', async () => {
    const keyring = new Keyring();
    const blob = Buffer.from(testKey('ed25519').blob);
    const key = new AgentKey(keyring, { blob, comment: '' });
    blob.fill(0);
    assert.ok(key.blob.equals(testKey('ed25519').blob));
  });

  it('signs through its agent; the RSA algorithm is chosen by name, other keys ignore it', async () => {
    const keyring = new Keyring();
    const rsa = await held(keyring, 'rsa-2048');
    assert.equal(algorithmOf(await rsa.sign(DATA)), 'rsa-sha2-512');
    assert.equal(algorithmOf(await rsa.sign(DATA, { algorithm: 'rsa-sha2-256' })), 'rsa-sha2-256');
    assert.equal(algorithmOf(await rsa.sign(DATA, { algorithm: 'ssh-rsa' })), 'ssh-rsa');
    const ed = await held(keyring, 'ed25519');
    const sig = await ed.sign(DATA, { algorithm: 'rsa-sha2-256' });
    assert.equal(algorithmOf(sig), 'ssh-ed25519');
    assert.ok(ed.verify(DATA, sig));
    assert.ok(!ed.verify(DATA, await rsa.sign(DATA)));
    await assert.rejects(rsa.sign(DATA, { algorithm: 'rsa-sha1' as 'ssh-rsa' }), UsageError);
  });

  it('refuses an RSA signature made with another algorithm than asked', async () => {
    // OpenSSH agents before 7.2 ignored the SIGN_REQUEST flags and always answered ssh-rsa
    // (SHA-1). None is installed here, so a keyring that drops the flags stands in for one.
    const keyring = new Keyring();
    const oldAgent: Agent = Object.assign(Object.create(keyring) as Keyring, {
      sign: (blob: Buffer, data: Buffer, _flags: number, session: AgentSession) => keyring.sign(blob, data, 0, session),
    });
    await keyring.add({ key: testKey('rsa-2048').body, comment: 'rsa' }, s);
    const key = new AgentKey(oldAgent, { blob: testKey('rsa-2048').blob, comment: 'rsa' });
    await assert.rejects(key.sign(DATA), (e: unknown) => e instanceof AgentProtocolError && /ssh-rsa/.test(e.message));
    assert.equal(algorithmOf(await key.sign(DATA, { algorithm: 'ssh-rsa' })), 'ssh-rsa');
  });

  it("a certificate identity shares its key's fingerprint and bits", async () => {
    const keyring = new Keyring();
    const cert = certifiedKey(testKey('ecdsa-521'));
    await keyring.add({ key: cert.body, comment: 'c' }, s);
    const key = new AgentKey(keyring, { blob: cert.blob, comment: 'c' });
    const plain = new AgentKey(keyring, { blob: testKey('ecdsa-521').blob, comment: 'p' });
    assert.equal(key.type, 'ecdsa-sha2-nistp521-cert-v01@openssh.com');
    assert.equal(key.fingerprint(), plain.fingerprint());
    assert.equal(key.fingerprint('md5'), plain.fingerprint('md5'));
    assert.equal(key.bits, 521);
    assert.ok(key.verify(DATA, await key.sign(DATA)));
    assert.equal(key.toSshpk().fingerprint('sha256').toString(), plain.fingerprint());
  });

  it('loadCertificate refuses a certificate for another key', async () => {
    const keyring = new Keyring();
    const ed = await held(keyring, 'ed25519');
    const other = certifiedKey(testKey('ecdsa-521'));
    const line = `${other.blob.subarray(4, 4 + other.blob.readUInt32BE(0)).toString()} ${other.blob.toString('base64')} other`;
    assert.throws(() => ed.loadCertificate(line), InvalidKeyError);
    assert.throws(() => ed.loadCertificate('/nonexistent/key-cert.pub'), UsageError);
    const own = certifiedKey(testKey('ed25519'));
    const loaded = ed.loadCertificate(`ssh-ed25519-cert-v01@openssh.com ${own.blob.toString('base64')}`);
    assert.ok(loaded.blob.equals(own.blob));
    // The keyring holds only the plain key: the certificate identity signs through it.
    assert.ok(loaded.verify(DATA, await loaded.sign(DATA)));
  });

  it('key types it does not interpret are kept as blobs', () => {
    const keyring = new Keyring();
    const blob = new SshWriter().string('sk-ssh-ed25519@openssh.com').string(Buffer.alloc(32, 7)).string('ssh:').finish();
    const sk = new AgentKey(keyring, { blob, comment: 'fido' });
    assert.equal(sk.type, 'sk-ssh-ed25519@openssh.com');
    assert.equal(sk.bits, 256);
    assert.match(sk.fingerprint(), /^SHA256:/);
    assert.equal(sk.verify(DATA, Buffer.alloc(8)), false);
    assert.throws(() => sk.toSshpk(), UnsupportedKeyError);
    assert.throws(() => new AgentKey(keyring, { blob: Buffer.from([0, 0, 0, 9, 1]), comment: '' }), ProtocolError);
  });
});

describe('client request building', () => {
  it('constraints are checked before anything is sent', async () => {
    const keyObject = generateKeyPairSync('ed25519').privateKey;
    for (const lifetimeSeconds of [0, -1, 1.5, 2 ** 32]) {
      await assert.rejects(buildAddRequests(keyObject, { lifetimeSeconds }), UsageError);
    }
    const [req] = await buildAddRequests(keyObject, { lifetimeSeconds: 60, confirm: true, comment: 'c' });
    assert.deepEqual(req.identity.constraints, [{ type: 'lifetime', seconds: 60 }, { type: 'confirm' }]);
    assert.equal(req.identity.comment, 'c');
  });

  it('a certificate that does not certify the key is refused', async () => {
    const cert = certifiedKey(testKey('ecdsa-521'));
    const line = `ecdsa-sha2-nistp521-cert-v01@openssh.com ${cert.blob.toString('base64')}`;
    await assert.rejects(
      buildAddRequests(generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey, { certificate: line }),
      InvalidKeyError,
    );
  });

  it('a missing key file is a UsageError naming the path, not the contents', async () => {
    await assert.rejects(
      buildAddRequests({ path: '/nonexistent/id_ed25519' }),
      (e: unknown) => e instanceof UsageError && /ENOENT/.test(e.message),
    );
  });

  it('query replies: names after "query"; anything else is AgentProtocolError', () => {
    const reply = new SshWriter().string('query').string('a@x').string('b@y').finish();
    assert.deepEqual(parseQueryReply({ type: 'extension-response', contents: Buffer.from(reply) }), ['a@x', 'b@y']);
    assert.throws(() => parseQueryReply({ type: 'success' }), AgentProtocolError);
    assert.throws(() => parseQueryReply({ type: 'extension-response', contents: Buffer.from([0, 0, 0, 9]) }), AgentProtocolError);
    const wrong = new SshWriter().string('other').finish();
    assert.throws(() => parseQueryReply({ type: 'extension-response', contents: Buffer.from(wrong) }), AgentProtocolError);
  });
});
