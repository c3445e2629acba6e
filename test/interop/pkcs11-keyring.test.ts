/**
 * The keyring with real PKCS#11 providers (SoftHSM2 through the helper process), driven
 * in-process: every signature algorithm verified against the token's public key (RSA
 * ssh-rsa / rsa-sha2-256 / rsa-sha2-512, ECDSA P-256, P-384 and P-521), certificates associated
 * with token keys (associated-certs-v00@openssh.com, made by the real ssh-keygen -s),
 * lifetime expiry, remove-all unloading the provider, and adds over a bound connection.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { Keyring } from '../../src/agent/keyring';
import { AgentSession } from '../../src/agent/session';
import { verifySignature } from '../../src/keys/verify';
import { Pkcs11Providers } from '../../src/pkcs11/provider-host';
import { SIGN_FLAG } from '../../src/protocol/messages';
import { SshReader, SshWriter } from '../../src/protocol/wire';
import { makeCA, signUserCert } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { deferred, removeDir, run, tempDir, waitFor } from '../helpers/proc';
import { DEFAULT_TOKEN_KEYS, SOFTHSM_MODULE, makeSoftToken, requireSoftHsm } from '../helpers/softhsm';
import type { SoftToken } from '../helpers/softhsm';

const P384 = { name: 'token-p384', args: ['-t', 'ecdsa', '-b', '384'], id: '03', kind: 'ECDSA' as const, bits: 384 };
/** Its CKA_EC_POINT (133 bytes) takes DER's long length form. */
const P521 = { name: 'token-p521', args: ['-t', 'ecdsa', '-b', '521'], id: '04', kind: 'ECDSA' as const, bits: 521 };

async function setup(t: TestContext): Promise<{ dir: string; token: SoftToken; keyring: Keyring } | undefined> {
  const hsm = requireSoftHsm(t);
  if (hsm === undefined || requirePeers(t, ['ssh-keygen']) === undefined) return undefined;
  const dir = await tempDir('tsagent-p11k-');
  const defer = deferred(t);
  defer(() => removeDir(dir));
  const token = await makeSoftToken(dir, hsm.util, [...DEFAULT_TOKEN_KEYS, P384, P521]);
  // The helper inherits the agent's environment: that is how SoftHSM finds this token.
  process.env.SOFTHSM2_CONF = token.env.SOFTHSM2_CONF;
  const keyring = new Keyring({ smartcards: new Pkcs11Providers() });
  // The PKCS#11 helper ends before its token directory goes.
  defer(() => keyring.clear());
  return { dir, token, keyring };
}

const pin = (token: SoftToken): Buffer => Buffer.from(token.pin);
/** An in-process, unbound connection. */
const local = AgentSession.inProcess();
const blobOf = (line: string): Buffer => Buffer.from(line.split(' ')[1], 'base64');
const algorithmOf = (sig: Buffer): string => new SshReader(sig).text();

/** The agent's own child processes: its provider helpers. */
async function children(): Promise<number> {
  const r = await run('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)]);
  return r.stdout.split('\n').filter((l) => l.includes('helper-main')).length;
}

describe('keyring with SoftHSM2 tokens', () => {
  it('signs with every algorithm, and the signatures verify with the token public keys', async (t) => {
    const s = await setup(t);
    if (s === undefined) return;
    await s.keyring.addSmartcardKey({ provider: SOFTHSM_MODULE, pin: pin(s.token), constraints: [] }, local);
    const ids = await s.keyring.list(local);
    assert.deepEqual(ids.map((i) => i.comment).sort(), ['token-ecdsa', 'token-p384', 'token-p521', 'token-rsa']);
    const data = Buffer.from('data to sign');
    const rsa = blobOf(s.token.keys[0].publicLine);
    for (const [flags, alg] of [
      [0, 'ssh-rsa'],
      [SIGN_FLAG.RSA_SHA2_256, 'rsa-sha2-256'],
      [SIGN_FLAG.RSA_SHA2_512, 'rsa-sha2-512'],
    ] as const) {
      const sig = await s.keyring.sign(rsa, data, flags, local);
      assert.equal(algorithmOf(sig), alg);
      assert.ok(verifySignature(rsa, data, sig), `${alg} verifies`);
    }
    for (const k of s.token.keys.slice(1)) {
      const blob = blobOf(k.publicLine);
      const sig = await s.keyring.sign(blob, data, 0, local);
      assert.equal(algorithmOf(sig), k.publicLine.split(' ')[0]);
      assert.ok(verifySignature(blob, data, sig), `${k.label} verifies`);
    }
  });

  it('adds certificates associated with token keys (and only them with certsOnly)', async (t) => {
    const s = await setup(t);
    if (s === undefined) return;
    const ca = await makeCA(s.dir);
    const certPath = await signUserCert(ca, join(s.dir, 'token-rsa.pub'), { principals: ['someone'], identity: 'token-cert' });
    const cert = blobOf(readFileSync(certPath, 'utf8'));
    const certs = new SshWriter().string(cert).finish();
    await s.keyring.addSmartcardKey(
      { provider: SOFTHSM_MODULE, pin: pin(s.token), constraints: [{ type: 'associated-certs', certsOnly: true, certs }] },
      local,
    );
    const ids = await s.keyring.list(local);
    assert.equal(ids.length, 1);
    assert.ok(ids[0].blob.equals(cert));
    assert.equal(ids[0].comment, 'token-rsa');
    const data = Buffer.from('cert data');
    const sig = await s.keyring.sign(cert, data, SIGN_FLAG.RSA_SHA2_256, local);
    assert.equal(algorithmOf(sig), 'rsa-sha2-256');
    assert.ok(verifySignature(blobOf(s.token.keys[0].publicLine), data, sig));

    await s.keyring.removeSmartcardKey(SOFTHSM_MODULE, local);
    await s.keyring.addSmartcardKey(
      { provider: SOFTHSM_MODULE, pin: pin(s.token), constraints: [{ type: 'associated-certs', certsOnly: false, certs }] },
      local,
    );
    assert.equal((await s.keyring.list(local)).length, 5, 'the certificate beside the four keys');
  });

  it('a lifetime removes the token keys, and the provider with them; remove-all unloads it too', async (t) => {
    const s = await setup(t);
    if (s === undefined) return;
    await s.keyring.addSmartcardKey(
      { provider: SOFTHSM_MODULE, pin: pin(s.token), constraints: [{ type: 'lifetime', seconds: 1 }] },
      local,
    );
    assert.equal((await s.keyring.list(local)).length, 4);
    await waitFor(async () => (await s.keyring.list(local)).length === 0, { timeoutMs: 10_000, what: 'token keys to expire' });
    await waitFor(async () => (await children()) === 0, { timeoutMs: 10_000, what: 'the helper to end' });
    // Unloaded: the same provider can be added again.
    await s.keyring.addSmartcardKey({ provider: SOFTHSM_MODULE, pin: pin(s.token), constraints: [] }, local);
    assert.equal(await children(), 1);
    await s.keyring.removeAll(local);
    assert.deepEqual(await s.keyring.list(local), []);
    await waitFor(async () => (await children()) === 0, { timeoutMs: 10_000, what: 'the helper to end' });
  });

  it('refuses adds over a connection that tried a session bind, unless remote adds are allowed', async (t) => {
    const s = await setup(t);
    if (s === undefined) return;
    const ctx = AgentSession.inProcess({ connectionId: 1 });
    assert.throws(() => ctx.bindings.bind(Buffer.alloc(0)));
    await assert.rejects(s.keyring.addSmartcardKey({ provider: SOFTHSM_MODULE, pin: pin(s.token), constraints: [] }, ctx));
    const permissive = new Keyring({ smartcards: new Pkcs11Providers({ allowRemoteAdd: true }) });
    t.after(() => permissive.clear());
    await permissive.addSmartcardKey({ provider: SOFTHSM_MODULE, pin: pin(s.token), constraints: [] }, ctx);
    assert.equal((await permissive.list(local)).length, 4);
  });

  it('a provider that is not a PKCS#11 module fails cleanly', async (t) => {
    const s = await setup(t);
    if (s === undefined) return;
    await assert.rejects(
      s.keyring.addSmartcardKey({ provider: '/usr/lib/os-release', pin: pin(s.token), constraints: [] }, local),
    );
    await assert.rejects(
      s.keyring.addSmartcardKey({ provider: '/usr/lib/no-such-module.so', pin: pin(s.token), constraints: [] }, local),
    );
    assert.deepEqual(await s.keyring.list(local), []);
    // It did not stay reserved: the real module still loads.
    await s.keyring.addSmartcardKey({ provider: SOFTHSM_MODULE, pin: pin(s.token), constraints: [] }, local);
    assert.equal((await s.keyring.list(local)).length, 4);
  });
});
