/**
 * Joyent's sshpk-agent `Client` (a Node ssh-agent client that speaks the protocol itself and
 * hands back sshpk objects), unchanged, against tsagent's daemon with OpenSSH's ssh-agent beside
 * it as the reference: listKeys, addKey (plain and with an `expires` lifetime), addCertificate /
 * listCertificates, sign (checked with sshpk's own verifier and with verifySignature), removeKey,
 * removeAllKeys, lock / unlock and listExtensions (`query`). Each step runs against both agents
 * with one long-lived Client each (the client keeps its socket open between requests), and their
 * outcomes — key lists, fingerprints, comments, deterministic signature bytes, the failures and
 * the client's error messages — must be the same, except where noted: `query` (OpenSSH 9.2 has
 * none; tsagent answers sshpk-agent's draft-00 form in draft-00's framing) and an ed25519
 * certificate, whose private half sshpk-agent mis-encodes (tsagent refuses it, OpenSSH stores
 * it unchecked).
 *
 * sshpk-agent 1.8.1 has no `confirm` constraint (addKey takes only `expires`), so confirm is not
 * exercised here; keys are parsed with the top-level sshpk 1.18: the client's checks are sshpk's
 * version-tagged isKey / isPrivateKey / isCertificate, not instanceof, so a newer sshpk's objects
 * pass them (keys serialise themselves; certificates go through the client's own sshpk 1.16).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import * as sshpk from 'sshpk';
import { AgentClient } from '../../src/client/agent-client';
import { verifySignature } from '../../src/keys/verify';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentImpl, AgentDaemon } from '../helpers/daemons';
import { generateKey, makeCA, signUserCert } from '../helpers/keys';
import type { GeneratedKey } from '../helpers/keys';
import { findPeer, requirePeers } from '../helpers/peers';
import { removeDir, tempDir, waitFor } from '../helpers/proc';

// ---------------------------------------------------------------------------------------------
// the part of sshpk-agent's (untyped) API this file uses

type Done = (err: Error | null) => void;
type AgentCertificate = sshpk.Certificate & { comment?: string };

interface RequestOptions {
  /** ms to wait for the agent's reply (client default 2000). */
  readonly timeout?: number;
}
interface AddOptions extends RequestOptions {
  /** Lifetime constraint, seconds. */
  readonly expires?: number;
}

interface SshpkAgentClient {
  listKeys(cb: (err: Error | null, keys?: sshpk.Key[]) => void): void;
  listCertificates(cb: (err: Error | null, certs?: AgentCertificate[]) => void): void;
  sign(key: sshpk.Key, data: Buffer, cb: (err: Error | null, sig?: sshpk.Signature) => void): void;
  addKey(key: sshpk.PrivateKey, opts: AddOptions, cb: Done): void;
  addCertificate(cert: sshpk.Certificate, key: sshpk.PrivateKey, opts: AddOptions, cb: Done): void;
  removeKey(key: sshpk.Key, cb: Done): void;
  removeAllKeys(cb: Done): void;
  lock(password: string, cb: Done): void;
  unlock(password: string, cb: Done): void;
  listExtensions(cb: (err: Error | null, extensions?: string[]) => void): void;
  /** ClientFSM: closes the kept-open socket. */
  disconnect(): void;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

interface SshpkAgentModule {
  Client: new (opts: { socketPath: string; timeout?: number }) => SshpkAgentClient;
}

const sshpkAgent = require('sshpk-agent') as SshpkAgentModule;

// ---------------------------------------------------------------------------------------------
// promise wrappers; every request is bounded by the client's own timeout

const TIMEOUT_MS = 10_000;

/** Either the value or the Error the client reported (failures are compared between agents). */
type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

function call<T>(fn: (cb: (err: Error | null, v?: T) => void) => void): Promise<Outcome<T>> {
  return new Promise((resolve) => {
    fn((err, v) => {
      if (err !== null && err !== undefined) resolve({ ok: false, error: err.message });
      else resolve({ ok: true, value: v as T });
    });
  });
}

async function must<T>(what: string, p: Promise<Outcome<T>>): Promise<T> {
  const o = await p;
  if (!o.ok) assert.fail(`${what}: ${o.error}`);
  return o.value;
}

interface Agent {
  readonly impl: AgentImpl;
  readonly daemon: AgentDaemon;
  readonly client: SshpkAgentClient;
  /** 'error' events the client emitted (a healthy run has none). */
  readonly errors: string[];
}

const listKeys = (a: Agent): Promise<Outcome<sshpk.Key[]>> => call((cb) => a.client.listKeys(cb));
const listCerts = (a: Agent): Promise<Outcome<AgentCertificate[]>> => call((cb) => a.client.listCertificates(cb));
const sign = (a: Agent, k: sshpk.Key, d: Buffer): Promise<Outcome<sshpk.Signature>> => call((cb) => a.client.sign(k, d, cb));
const addKey = (a: Agent, k: sshpk.PrivateKey, o: AddOptions = {}): Promise<Outcome<undefined>> =>
  call((cb) => a.client.addKey(k, { timeout: TIMEOUT_MS, ...o }, cb));
const addCert = (a: Agent, c: sshpk.Certificate, k: sshpk.PrivateKey, o: AddOptions = {}): Promise<Outcome<undefined>> =>
  call((cb) => a.client.addCertificate(c, k, { timeout: TIMEOUT_MS, ...o }, cb));
const removeKey = (a: Agent, k: sshpk.Key): Promise<Outcome<undefined>> => call((cb) => a.client.removeKey(k, cb));
const removeAll = (a: Agent): Promise<Outcome<undefined>> => call((cb) => a.client.removeAllKeys(cb));
const lock = (a: Agent, pw: string): Promise<Outcome<undefined>> => call((cb) => a.client.lock(pw, cb));
const unlock = (a: Agent, pw: string): Promise<Outcome<undefined>> => call((cb) => a.client.unlock(pw, cb));
const listExtensions = (a: Agent): Promise<Outcome<string[]>> => call((cb) => a.client.listExtensions(cb));

/** What a listKeys entry is compared by. */
interface Listed {
  readonly type: string;
  readonly size: number;
  readonly fingerprint: string;
  readonly comment: string;
}
const listed = (k: sshpk.Key): Listed => ({
  type: k.type,
  size: k.size,
  fingerprint: k.fingerprint('sha256').toString(),
  comment: k.comment ?? '',
});
const expectedFor = (g: GeneratedKey, pk: sshpk.PrivateKey): Listed => ({
  type: pk.type,
  size: pk.size,
  fingerprint: g.fingerprint,
  comment: g.comment,
});

async function keysOf(a: Agent): Promise<Listed[]> {
  return (await must(`${a.impl} listKeys`, listKeys(a))).map(listed);
}

/**
 * Signs `data` with the identity `keyBlob` (a certificate) through tsagent's own AgentClient —
 * sshpk-agent's sign() takes only plain keys — and says whether the signature verifies.
 */
async function certSignatureVerifies(a: Agent, keyBlob: Buffer, data: Buffer): Promise<boolean> {
  const c = new AgentClient({ socketPath: a.daemon.socketPath, timeoutMs: TIMEOUT_MS });
  try {
    return verifySignature(keyBlob, data, await c.sign(keyBlob, data));
  } finally {
    c.close();
  }
}

/** A certificate's wire blob (sshpk's toBuffer('openssh') returns the text line, not a Buffer). */
const blobOfCert = (c: sshpk.Certificate): Buffer => Buffer.from(c.toString('openssh').split(' ')[1] ?? '', 'base64');

/** Runs `fn` against tsagent and OpenSSH at once: [tsagent's result, OpenSSH's]. */
function both<T>(agents: readonly [Agent, Agent], fn: (a: Agent) => Promise<T>): Promise<[T, T]> {
  return Promise.all([fn(agents[0]), fn(agents[1])]);
}

// ---------------------------------------------------------------------------------------------

const PEERS = ['ssh-keygen', 'ssh-agent'] as const;
const DATA = Buffer.from('data sshpk-agent signs through the agent');
const PASSWORD = 'sshpk-agent lock password';

interface TestKey {
  readonly gen: GeneratedKey;
  readonly priv: sshpk.PrivateKey;
}

describe('sshpk-agent Client against tsagent and OpenSSH ssh-agent', () => {
  let dir: string | undefined;
  const agents: Agent[] = [];
  let pair: readonly [Agent, Agent];
  let ed25519: TestKey;
  let ecdsa: TestKey;
  let rsa: TestKey;
  let short: TestKey; // added with a 1 s lifetime
  let certKey: TestKey; // ecdsa-256 key whose user certificate is added
  let cert: sshpk.Certificate;
  let certBlob: Buffer;
  let edCertKey: TestKey; // ed25519 key with a certificate: sshpk-agent mis-encodes its private half
  let edCert: sshpk.Certificate;
  let edCertBlob: Buffer;

  /** Skips when a peer is missing (under CI requirePeers throws instead). */
  const ready = (t: TestContext): boolean => requirePeers(t, PEERS) !== undefined;

  const load = async (d: string, type: 'ed25519' | 'ecdsa-256' | 'rsa-2048', comment: string): Promise<TestKey> => {
    const gen = await generateKey(d, type, comment);
    const priv = sshpk.parsePrivateKey(readFileSync(gen.privatePath), 'auto', { filename: gen.privatePath });
    return { gen, priv };
  };

  before(async () => {
    if (PEERS.some((p) => findPeer(p) === undefined)) return; // each test skips (or fails under CI)
    dir = await tempDir('tsagent-sshpk-agent-');
    ed25519 = await load(dir, 'ed25519', 'sshpk-agent ed25519');
    ecdsa = await load(dir, 'ecdsa-256', 'sshpk-agent ecdsa-256');
    rsa = await load(dir, 'rsa-2048', 'sshpk-agent rsa-2048');
    short = await load(dir, 'ecdsa-256', 'sshpk-agent short-lived');
    // No spaces in these comments: sshpk's certificate-line parser allows a one-word comment.
    certKey = await load(dir, 'ecdsa-256', 'sshpk-agent-certified');
    edCertKey = await load(dir, 'ed25519', 'sshpk-agent-ed25519-certified');
    const ca = await makeCA(dir);
    const readCert = async (k: TestKey): Promise<[sshpk.Certificate, Buffer]> => {
      const path = await signUserCert(ca, k.gen.publicPath, {
        principals: ['alice', 'bob'],
        identity: 'sshpk-agent-cert',
        validity: '-5m:+1h',
        serial: 42,
      });
      const text = readFileSync(path, 'utf8');
      return [sshpk.parseCertificate(text, 'openssh'), Buffer.from(text.trim().split(/\s+/)[1] ?? '', 'base64')];
    };
    [cert, certBlob] = await readCert(certKey);
    [edCert, edCertBlob] = await readCert(edCertKey);
    for (const impl of ['tsagent', 'openssh'] as const) {
      const daemon = await startAgentDaemon(impl);
      const client = new sshpkAgent.Client({ socketPath: daemon.socketPath, timeout: TIMEOUT_MS });
      const errors: string[] = [];
      client.on('error', (e) => errors.push(e.message));
      agents.push({ impl, daemon, client, errors });
    }
    pair = [agents[0], agents[1]];
  });

  after(async () => {
    for (const a of agents) a.client.disconnect();
    await Promise.all(agents.map((a) => a.daemon.stop()));
    if (dir !== undefined) await removeDir(dir);
  });

  it('listKeys on a fresh agent: empty on both', async (t) => {
    if (!ready(t)) return;
    const [ours, ref] = await both(pair, keysOf);
    assert.deepEqual(ref, []);
    assert.deepEqual(ours, []);
    const [oc, rc] = await both(pair, (a) => must(`${a.impl} listCertificates`, listCerts(a)));
    assert.deepEqual([oc.length, rc.length], [0, 0]);
  });

  it('addKey (sshpk.PrivateKey from the key files) then listKeys: same types, fingerprints, comments, order', async (t) => {
    if (!ready(t)) return;
    const keys = [ed25519, ecdsa, rsa];
    await both(pair, async (a) => {
      for (const k of keys) await must(`${a.impl} addKey ${k.gen.type}`, addKey(a, k.priv));
    });
    const [ours, ref] = await both(pair, keysOf);
    const expected = keys.map((k) => expectedFor(k.gen, k.priv));
    assert.deepEqual(ref, expected, 'OpenSSH (reference) list');
    assert.deepEqual(ours, ref, 'tsagent list vs OpenSSH');
  });

  it('sign: sshpk and verifySignature accept every signature; ed25519 and RSA bytes match OpenSSH', async (t) => {
    if (!ready(t)) return;
    for (const k of [ed25519, ecdsa, rsa]) {
      const [ok, rk] = await both(pair, async (a) => {
        const listedKey = (await must(`${a.impl} listKeys`, listKeys(a))).find(
          (x) => x.fingerprint('sha256').toString() === k.gen.fingerprint,
        );
        assert.ok(listedKey, `${a.impl}: ${k.gen.type} listed`);
        const sig = await must(`${a.impl} sign ${k.gen.type}`, sign(a, listedKey, DATA));
        const hash = sig.hashAlgorithm;
        assert.ok(hash !== undefined, `${a.impl} ${k.gen.type}: signature names its hash`);
        const v = listedKey.createVerify(hash);
        v.update(DATA);
        assert.equal(v.verify(sig), true, `${a.impl} ${k.gen.type}: sshpk verifies`);
        const blob = sig.toBuffer('ssh');
        assert.equal(verifySignature(k.gen.blob, DATA, blob), true, `${a.impl} ${k.gen.type}: verifySignature`);
        assert.equal(verifySignature(k.gen.blob, Buffer.from('other data'), blob), false);
        return { hash, blob };
      });
      // sshpk-agent always sends the rsa-sha2-256 flag: both agents must honour it.
      const expectedHash = k.gen.type === 'ed25519' ? 'sha512' : 'sha256';
      assert.equal(rk.hash, expectedHash, `OpenSSH ${k.gen.type} hash`);
      assert.equal(ok.hash, rk.hash, `tsagent ${k.gen.type} hash vs OpenSSH`);
      if (k.gen.type !== 'ecdsa-256') assert.ok(ok.blob.equals(rk.blob), `${k.gen.type}: deterministic signature bytes differ`);
    }
  });

  it('sign and removeKey with a key the agent does not hold: both fail alike', async (t) => {
    if (!ready(t)) return;
    const absent = short.priv.toPublic();
    const [os, rs] = await both(pair, (a) => sign(a, absent, DATA));
    assert.equal(rs.ok, false);
    assert.deepEqual(os, rs);
    const [or, rr] = await both(pair, (a) => removeKey(a, absent));
    assert.equal(rr.ok, false);
    assert.deepEqual(or, rr);
  });

  it('addCertificate then listCertificates: the certificate comes back intact; listKeys skips it', async (t) => {
    if (!ready(t)) return;
    await both(pair, (a) => must(`${a.impl} addCertificate`, addCert(a, cert, certKey.priv)));
    const [oc, rc] = await both(pair, (a) => must(`${a.impl} listCertificates`, listCerts(a)));
    const view = (cs: AgentCertificate[]): unknown[] =>
      cs.map((c) => ({
        blob: blobOfCert(c).toString('base64'),
        subjects: c.subjects.map((s) => s.toString()),
        key: c.subjectKey.fingerprint('sha256').toString(),
        comment: c.comment,
      }));
    assert.equal(rc.length, 1);
    assert.deepEqual(view(oc), view(rc));
    const only = oc[0];
    assert.ok(blobOfCert(only).equals(certBlob), 'certificate blob as signed by ssh-keygen');
    assert.deepEqual(
      only.subjects.map((s) => s.toString()),
      ['UID=alice', 'UID=bob'], // sshpk's Identity.toString() for user principals
    );
    assert.equal(only.subjectKey.fingerprint('sha256').toString(), certKey.gen.fingerprint);
    // The private half sshpk-agent sent with the certificate is the right one: the certificate
    // identity's signatures verify on both agents.
    assert.deepEqual(await both(pair, (a) => certSignatureVerifies(a, certBlob, DATA)), [true, true]);
    // listKeys drops certificate identities, so the plain keys are unchanged on both agents.
    const [ok, rk] = await both(pair, keysOf);
    assert.deepEqual(ok, rk);
    assert.equal(rk.length, 3);
  });

  it('sign with the bare key of a certificate-only identity: same outcome as OpenSSH', async (t) => {
    if (!ready(t)) return;
    const bare = certKey.priv.toPublic();
    const [os, rs] = await both(pair, (a) => sign(a, bare, DATA));
    const summary = (o: Outcome<sshpk.Signature>): unknown =>
      o.ok ? { ok: true, blob: o.value.toBuffer('ssh').toString('base64') } : o;
    assert.deepEqual(summary(os), summary(rs));
  });

  it("addCertificate with an ed25519 key: tsagent refuses sshpk-agent's swapped private half", async (t) => {
    if (!ready(t)) return;
    // sshpk-agent 1.8.1's certToBuffer() sends an ed25519 certificate's private part as
    // string(A) string(A || seed); OpenSSH's encoding (and sshpk's own rfc4253 writer, used by
    // addKey) is string(A) string(seed || A). tsagent checks the private key against the
    // certified public key and answers FAILURE; OpenSSH 9.2 stores the bytes unchecked, and the
    // identity then signs with the wrong seed — its signatures do not verify.
    const [ours, ref] = await both(pair, (a) => addCert(a, edCert, edCertKey.priv));
    assert.deepEqual(ours, { ok: false, error: 'SSH agent add-identity command failed (not supported or invalid key?)' });
    const [oc, rc] = await both(pair, (a) => must(`${a.impl} listCertificates`, listCerts(a)));
    assert.equal(oc.length, 1, 'tsagent holds only the ecdsa certificate');
    if (ref.ok) {
      assert.equal(rc.length, 2);
      t.diagnostic('OpenSSH accepted the mis-encoded ed25519 certificate key');
      assert.equal(await certSignatureVerifies(pair[1], edCertBlob, DATA), false, 'OpenSSH signs with a wrong key');
      // sshpk-agent's removeKey takes plain keys only: remove the certificate with AgentClient.
      const c = new AgentClient({ socketPath: pair[1].daemon.socketPath, timeoutMs: TIMEOUT_MS });
      try {
        await c.remove(edCertBlob);
      } finally {
        c.close();
      }
    }
    const [oc2, rc2] = await both(pair, (a) => must(`${a.impl} listCertificates`, listCerts(a)));
    assert.deepEqual([oc2.length, rc2.length], [1, 1]);
  });

  it('addKey with { expires }: listed, then gone on both once it expires', async (t) => {
    if (!ready(t)) return;
    await both(pair, (a) => must(`${a.impl} addKey expires`, addKey(a, short.priv, { expires: 1 })));
    const [ok, rk] = await both(pair, keysOf);
    assert.deepEqual(ok, rk);
    assert.ok(
      rk.some((k) => k.fingerprint === short.gen.fingerprint),
      'short-lived key listed on OpenSSH',
    );
    await both(pair, (a) =>
      waitFor(async () => !(await keysOf(a)).some((k) => k.fingerprint === short.gen.fingerprint), {
        timeoutMs: 15_000,
        intervalMs: 200,
        what: `${a.impl} to drop the 1 s key`,
      }),
    );
    const [os, rs] = await both(pair, (a) => sign(a, short.priv.toPublic(), DATA));
    assert.equal(rs.ok, false);
    assert.deepEqual(os, rs);
    // A long lifetime is accepted and keeps the key.
    await both(pair, (a) => must(`${a.impl} addKey expires 3600`, addKey(a, short.priv, { expires: 3600 })));
    const [ok2, rk2] = await both(pair, keysOf);
    assert.deepEqual(ok2, rk2);
    assert.equal(rk2.length, 4);
  });

  it('lock / unlock: locked agents list nothing and refuse; wrong password refused; unlock restores', async (t) => {
    if (!ready(t)) return;
    const [before_, ref0] = await both(pair, keysOf);
    assert.deepEqual(before_, ref0);
    await both(pair, (a) => must(`${a.impl} lock`, lock(a, PASSWORD)));
    const [lo, lr] = await both(pair, (a) => listKeys(a).then((o) => (o.ok ? { ok: true, value: o.value.map(listed) } : o)));
    assert.deepEqual(lr, { ok: true, value: [] });
    assert.deepEqual(lo, lr);
    const [so, sr] = await both(pair, (a) => sign(a, ed25519.priv.toPublic(), DATA));
    assert.equal(sr.ok, false);
    assert.deepEqual(so, sr);
    const [ao, ar] = await both(pair, (a) => addKey(a, ecdsa.priv));
    assert.deepEqual(ao, ar);
    const [ro, rr] = await both(pair, (a) => removeAll(a));
    assert.deepEqual(ro, rr);
    const [xo, xr] = await both(pair, (a) => lock(a, PASSWORD));
    assert.equal(xr.ok, false, 'OpenSSH refuses to lock twice');
    assert.deepEqual(xo, xr);
    const [wo, wr] = await both(pair, (a) => unlock(a, `${PASSWORD}!`));
    assert.equal(wr.ok, false);
    assert.deepEqual(wo, wr);
    await both(pair, (a) => must(`${a.impl} unlock`, unlock(a, PASSWORD)));
    const [after_, ref1] = await both(pair, keysOf);
    assert.deepEqual(ref1, ref0, 'OpenSSH keeps its keys across lock');
    assert.deepEqual(after_, ref1);
    const [uo, ur] = await both(pair, (a) => unlock(a, PASSWORD));
    assert.equal(ur.ok, false, 'unlocking an unlocked agent fails');
    assert.deepEqual(uo, ur);
  });

  it('removeKey then removeAllKeys: lists shrink alike, certificates go too', async (t) => {
    if (!ready(t)) return;
    await both(pair, (a) => must(`${a.impl} removeKey`, removeKey(a, rsa.priv.toPublic())));
    const [ok, rk] = await both(pair, keysOf);
    assert.deepEqual(ok, rk);
    assert.ok(!rk.some((k) => k.fingerprint === rsa.gen.fingerprint));
    const [again, againRef] = await both(pair, (a) => removeKey(a, rsa.priv.toPublic()));
    assert.equal(againRef.ok, false);
    assert.deepEqual(again, againRef);
    await both(pair, (a) => must(`${a.impl} removeAllKeys`, removeAll(a)));
    const [ok2, rk2] = await both(pair, keysOf);
    assert.deepEqual([ok2, rk2], [[], []]);
    const [oc, rc] = await both(pair, (a) => must(`${a.impl} listCertificates`, listCerts(a)));
    assert.deepEqual([oc.length, rc.length], [0, 0]);
    // removeAllKeys on an empty agent still succeeds.
    const [eo, er] = await both(pair, removeAll);
    assert.deepEqual([eo.ok, er.ok], [true, true]);
  });

  it("listExtensions (query): sshpk-agent's draft-00 form gets the draft-00 answer; the plain form keeps RFC 9987's", async (t) => {
    if (!ready(t)) return;
    const [ours, ref] = await both(pair, listExtensions);
    t.diagnostic(`tsagent: ${JSON.stringify(ours)}; OpenSSH: ${JSON.stringify(ref)}`);
    // OpenSSH 9.2 has no `query`: FAILURE, which sshpk-agent reports cleanly.
    assert.deepEqual(ref, { ok: false, error: 'SSH agent does not support RFC extensions' });
    // sshpk-agent 1.8.1 frames `query` as draft-00 does (one more, empty, string after the
    // name) and reads only draft-00's answer: SUCCESS, then uint32 count and the names.
    assert.deepEqual(ours, { ok: true, value: ['query', 'session-bind@openssh.com'] });
    // Asked again on the same long-lived connection: same answer, the connection is healthy.
    assert.deepEqual(await listExtensions(pair[0]), ours);
    // The plain form (no contents), as Go's x/crypto client (go-agent.test.ts runs it) and
    // OpenSSH 10.3+ send it, keeps the RFC 9987 answer: EXTENSION_RESPONSE (29) with
    // string "query", then the same names in the same order.
    const c = new AgentClient({ socketPath: pair[0].daemon.socketPath, timeoutMs: TIMEOUT_MS });
    try {
      const plain = await c.extension('query');
      assert.equal(plain.type, 'extension-response');
      assert.deepEqual(await c.query(), ours.ok ? ours.value : []);
    } finally {
      c.close();
    }
    assert.deepEqual(pair[0].errors, [], 'sshpk-agent decoded every reply');
  });

  it('the clients saw no other errors and still work against both agents', async (t) => {
    if (!ready(t)) return;
    const [ok, rk] = await both(pair, keysOf);
    assert.deepEqual([ok, rk], [[], []]);
    const [so, sr] = await both(pair, async (a) => {
      await must(`${a.impl} addKey`, addKey(a, ed25519.priv));
      const sig = await must(`${a.impl} sign`, sign(a, ed25519.priv.toPublic(), DATA));
      await must(`${a.impl} removeAllKeys`, removeAll(a));
      return sig.toBuffer('ssh');
    });
    assert.ok(so.equals(sr), 'ed25519 signature bytes');
    assert.equal(verifySignature(ed25519.gen.blob, DATA, so), true);
    for (const a of pair) assert.deepEqual(a.errors, [], `${a.impl} client 'error' events`);
  });
});
