/**
 * The decision gate (src/agent/gate.ts) decides both ways a sign request can be served: the
 * synchronous fast path the server tries first (Keyring.answerSync) and the asynchronous path
 * (Keyring.sign, what dispatch calls). Every refusal reason — locked, expired, confirm denied,
 * destination rule, policy deny — must refuse on both, with and without ports; and the ports
 * (agent/ports.ts) are consulted as their contract says.
 */
import assert from 'node:assert/strict';
import { SwappablePolicy } from '../../src/policy/swappable-policy';
import { sshsigSignedData } from '../helpers/sshsig';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { dispatch } from '../../src/agent/dispatcher';
import type { KeyringOptions } from '../../src/agent/keyring';
import { Keyring } from '../../src/agent/keyring';
import type { PassphraseAsker, RegisteredKeySource } from '../../src/agent/registered';
import type {
  ApprovalPort,
  AuditRecord,
  AuditSink,
  KeyView,
  PolicyDecision,
  PolicyPort,
  SignQuestion,
} from '../../src/agent/ports';
import { AgentSession } from '../../src/agent/session';
import { AgentClient } from '../../src/client/agent-client';
import type { HostNames, ProcessInfo } from '../../src/context/types';
import {
  AgentError,
  AgentFailureError,
  AgentLockedError,
  ConfirmDeniedError,
  KeyFileError,
  KeyNotFoundError,
} from '../../src/errors';
import type { HeldKey } from '../../src/keys/held-key';
import { fingerprint } from '../../src/keys/fingerprint';
import { importPrivateKey } from '../../src/keys/import-private';
import { Signer } from '../../src/keys/sign';
import { verifySignature } from '../../src/keys/verify';
import { loadLibc } from '../../src/native/libc';
import type { Constraint } from '../../src/protocol/constraints';
import type { Request, Response } from '../../src/protocol/messages';
import { encodeSessionBind, SESSION_BIND } from '../../src/protocol/session-bind';
import { SshWriter } from '../../src/protocol/wire';
import { AgentServer } from '../../src/server/agent-server';
import { uidPeerCheck } from '../../src/server/peer-check';
import { testKey } from '../helpers/keys';
import { skipOrFail } from '../helpers/peers';
import type { TestKey } from '../helpers/keys';

const DATA = Buffer.from('not a userauth request');

const signRequest = (k: TestKey, data: Buffer = DATA): Request => ({ type: 'sign', keyBlob: k.blob, data, flags: 0 });

/** An AuditSink that keeps what it is given. */
function memoryAudit(): AuditSink & { readonly records: AuditRecord[] } {
  const records: AuditRecord[] = [];
  return { records, record: (r) => records.push(r), flush: () => undefined };
}

/** Blocks this thread for `ms` without running timers (so expiry timers cannot fire meanwhile). */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A restrict-destination constraint allowing only a login to a host we never bind to. */
function onlyToElsewhere(): Constraint {
  const reserved = Buffer.alloc(0);
  return {
    type: 'restrict-destination',
    constraints: [
      {
        from: { user: '', hostname: '', reserved, keys: [] },
        to: { user: '', hostname: 'elsewhere.example', reserved, keys: [{ blob: testKey('ecdsa-384').blob, isCa: false }] },
        reserved,
      },
    ],
  };
}

/** What `ssh` asks the agent to sign to log in as `user` (RFC 4252 §7). */
function userauth(sessionId: Buffer, user: string, key: TestKey): Buffer {
  const w = new SshWriter().string(sessionId).byte(50).string(user).string('ssh-connection').string('publickey').bool(true);
  return Buffer.from(w.string('ssh-ed25519').string(key.blob).finish());
}

/** Binds `session` to `host` (session-bind@openssh.com, signed by the host key); returns the session id. */
async function bind(keyring: Keyring, session: AgentSession, host: TestKey): Promise<Buffer> {
  const sessionId = randomBytes(32);
  const signature = await new Signer().sign(importPrivateKey(host.body), sessionId, 0);
  const contents = encodeSessionBind({ hostKey: host.blob, sessionId, signature, isForwarding: false });
  await keyring.extension(SESSION_BIND, contents, session);
  return sessionId;
}

interface Refusing {
  readonly keyring: Keyring;
  readonly session: AgentSession;
  /** The key asked for on the fast path, and the one asked for on the asynchronous path. */
  readonly syncKey: TestKey;
  readonly asyncKey: TestKey;
}

interface RefusalCase {
  readonly reason: string;
  /** The fast path cannot ask a question: it hands the request on instead of refusing. */
  readonly syncDefers?: boolean;
  readonly error: new (...args: never[]) => AgentError;
  /** The audit record's decision and reason. */
  readonly audit: { readonly decision: AuditRecord['decision']; readonly reason: RegExp };
  setup(options: KeyringOptions): Promise<Refusing>;
}

/**
 * Registered keys (POLICY.md §3) as the keyring sees them (agent/registered.ts), kept in
 * memory: `unlock` asks the asker once and takes any answer but "wrong".
 */
function memoryRegistered(keys: readonly TestKey[], opts: { confirm?: boolean } = {}): RegisteredKeySource & { asked: number } {
  const held = new Map<string, HeldKey>();
  const list = keys.map((k, i) => {
    const name = `reg${i}`;
    const type = importPrivateKey(k.body).type;
    return {
      name,
      key: k,
      view: {
        blob: k.blob,
        fingerprint: fingerprint(k.blob),
        comment: name,
        type,
        name,
        source: 'config' as const,
        confirm: opts.confirm === true,
      },
    };
  });
  const src = {
    asked: 0,
    list: () => list,
    held: (name: string) => held.get(name),
    async unlock(name: string, ask: PassphraseAsker): Promise<HeldKey> {
      const have = held.get(name);
      if (have !== undefined) return have;
      src.asked++;
      const pass = await ask(`passphrase for ${name}`, 1);
      const ok = pass !== null && pass.toString() !== 'wrong';
      pass?.fill(0);
      if (!ok) throw new KeyFileError('wrong passphrase', name);
      const k = importPrivateKey(list.find((x) => x.name === name)!.key.body);
      held.set(name, k);
      return k;
    },
    async unlockWith(name: string, passphrase: Buffer): Promise<void> {
      await src.unlock(name, async () => passphrase);
    },
    drop: (name: string) => void held.delete(name),
    dropAll: () => held.clear(),
    lifetimeLeft: () => null,
    addedKeySettings: () => undefined,
  };
  return src;
}

const answer =
  (text: string): PassphraseAsker =>
  async () =>
    Buffer.from(text);

const ed = (): TestKey => testKey('ed25519');
const ec = (): TestKey => testKey('ecdsa-256');

const CASES: RefusalCase[] = [
  {
    reason: 'locked',
    error: AgentLockedError,
    audit: { decision: 'fail', reason: /^agent is locked$/ },
    async setup(options) {
      const keyring = new Keyring(options);
      const session = AgentSession.inProcess();
      await keyring.add({ key: ed().body, comment: 'k' }, session);
      await keyring.lock(Buffer.from('pw'), session);
      return { keyring, session, syncKey: ed(), asyncKey: ed() };
    },
  },
  {
    reason: 'expired',
    error: KeyNotFoundError,
    audit: { decision: 'fail', reason: /^identity expired$/ },
    async setup(options) {
      const keyring = new Keyring(options);
      const session = AgentSession.inProcess();
      const lifetime: Constraint[] = [{ type: 'lifetime', seconds: 1 }];
      await keyring.add({ key: ed().body, comment: 'short 1', constraints: lifetime }, session);
      await keyring.add({ key: ec().body, comment: 'short 2', constraints: lifetime }, session);
      // Past the deadline with the expiry timers not yet run: the gate itself must see it.
      blockFor(1100);
      return { keyring, session, syncKey: ed(), asyncKey: ec() };
    },
  },
  {
    reason: 'destination rule',
    error: AgentFailureError,
    audit: { decision: 'deny', reason: /destination-constrained/ },
    async setup(options) {
      const keyring = new Keyring(options);
      const session = AgentSession.inProcess();
      await keyring.add({ key: ed().body, comment: 'restricted', constraints: [onlyToElsewhere()] }, session);
      return { keyring, session, syncKey: ed(), asyncKey: ed() };
    },
  },
  {
    reason: 'confirm denied',
    syncDefers: true,
    error: ConfirmDeniedError,
    audit: { decision: 'deny', reason: /denied/ },
    async setup(options) {
      const keyring = new Keyring({ ...options, confirmer: async () => false });
      const session = AgentSession.inProcess();
      await keyring.add({ key: ed().body, comment: 'confirm me', constraints: [{ type: 'confirm' }] }, session);
      return { keyring, session, syncKey: ed(), asyncKey: ed() };
    },
  },
  {
    reason: 'policy deny',
    error: AgentFailureError,
    audit: { decision: 'deny', reason: /^rule 1$/ },
    async setup(options) {
      const policy: PolicyPort = {
        selectForList: (keys) => keys,
        decideSign: () => ({ action: 'deny', reason: 'rule 1' }),
      };
      const keyring = new Keyring({ ...options, policy });
      const session = AgentSession.inProcess();
      await keyring.add({ key: ed().body, comment: 'k' }, session);
      return { keyring, session, syncKey: ed(), asyncKey: ed() };
    },
  },
  {
    reason: 'registered key not loaded, locked',
    error: AgentLockedError,
    audit: { decision: 'fail', reason: /^agent is locked$/ },
    async setup(options) {
      const keyring = new Keyring(options);
      const session = AgentSession.inProcess();
      keyring.setRegistered(memoryRegistered([ed()]), answer('right'));
      await keyring.lock(Buffer.from('pw'), session);
      return { keyring, session, syncKey: ed(), asyncKey: ed() };
    },
  },
  {
    reason: 'registered key not loaded, policy deny',
    error: AgentFailureError,
    audit: { decision: 'deny', reason: /^rule 1$/ },
    async setup(options) {
      const policy: PolicyPort = { selectForList: (keys) => keys, decideSign: () => ({ action: 'deny', reason: 'rule 1' }) };
      const keyring = new Keyring({ ...options, policy });
      // A passphrase is never asked for a use the gate refuses.
      keyring.setRegistered(memoryRegistered([ed()]), () => assert.fail('asked for a passphrase'));
      return { keyring, session: AgentSession.inProcess(), syncKey: ed(), asyncKey: ed() };
    },
  },
  {
    reason: 'registered key not loaded, confirm denied',
    syncDefers: true,
    error: ConfirmDeniedError,
    audit: { decision: 'deny', reason: /denied/ },
    async setup(options) {
      const keyring = new Keyring({ ...options, confirmer: async () => false });
      keyring.setRegistered(memoryRegistered([ed()], { confirm: true }), () => assert.fail('asked for a passphrase'));
      return { keyring, session: AgentSession.inProcess(), syncKey: ed(), asyncKey: ed() };
    },
  },
  {
    reason: 'registered key, wrong passphrase',
    syncDefers: true,
    error: AgentFailureError,
    audit: { decision: 'fail', reason: /^key not decrypted$/ },
    async setup(options) {
      const keyring = new Keyring(options);
      keyring.setRegistered(memoryRegistered([ed()]), answer('wrong'));
      return { keyring, session: AgentSession.inProcess(), syncKey: ed(), asyncKey: ed() };
    },
  },
];

describe('the gate refuses on both paths', () => {
  for (const c of CASES) {
    for (const withAudit of [false, true]) {
      it(`${c.reason}${withAudit ? ', with an audit sink' : ''}`, async () => {
        const audit = memoryAudit();
        const { keyring, session, syncKey, asyncKey } = await c.setup(withAudit ? { audit } : {});
        try {
          // The fast path, as the server calls it (before any await on this request).
          const sync = keyring.answerSync(signRequest(syncKey), session);
          if (c.syncDefers) assert.equal(sync, undefined, 'the fast path must not sign; it hands the request on');
          else assert.deepEqual(sync, { type: 'failure' }, 'the fast path refuses');
          // The asynchronous path (dispatch), and the fast path's hand-over ending there too.
          await assert.rejects(keyring.sign(asyncKey.blob, DATA, 0, session), c.error);
          if (c.syncDefers) await assert.rejects(keyring.sign(syncKey.blob, DATA, 0, session), c.error);
          if (withAudit) {
            const signs = audit.records.filter((r) => r.event === 'sign');
            assert.equal(signs.length, 2, 'one record per refused request');
            for (const r of signs) {
              assert.equal(r.decision, c.audit.decision);
              assert.match(r.reason, c.audit.reason);
              assert.equal(r.purpose, 'other');
              assert.equal(r.destination, null);
            }
          }
        } finally {
          keyring.clear();
        }
      });
    }
  }

  it('the same keyrings sign on the fast path once the reason is gone (the cases above are not vacuous)', async () => {
    const audit = memoryAudit();
    for (const options of [{}, { audit }]) {
      const keyring = new Keyring(options);
      const session = AgentSession.inProcess();
      await keyring.add({ key: ed().body, comment: 'k' }, session);
      const sync = keyring.answerSync(signRequest(ed()), session);
      assert.ok(sync?.type === 'sign-response' && verifySignature(ed().blob, DATA, sync.signature));
      await keyring.lock(Buffer.from('pw'), session);
      assert.deepEqual(keyring.answerSync(signRequest(ed()), session), { type: 'failure' });
      await keyring.unlock(Buffer.from('pw'), session);
      const again = keyring.answerSync(signRequest(ed()), session);
      assert.equal(again?.type, 'sign-response');
      keyring.clear();
    }
    assert.deepEqual(
      audit.records.map((r) => [r.event, r.decision]),
      [
        ['add', 'allow'],
        ['sign', 'allow'],
        ['lock', 'allow'],
        ['sign', 'fail'],
        ['unlock', 'allow'],
        ['sign', 'allow'],
      ],
    );
    const first = audit.records[1];
    assert.deepEqual(first.key, { fingerprint: fingerprint(ed().blob), comment: 'k', name: null, type: 'ssh-ed25519' });
    assert.equal(first.reason, 'default');
  });
});

describe('the gate and its ports', () => {
  it('without ports a list is one cached array (the server caches its encoded frame by it)', async () => {
    const keyring = new Keyring();
    const session = AgentSession.inProcess();
    await keyring.add({ key: ed().body, comment: 'a' }, session);
    const first = keyring.answerSync({ type: 'request-identities' }, session) as Extract<Response, { type: 'identities' }>;
    assert.equal(await keyring.list(AgentSession.inProcess()), first.identities);
    await keyring.add({ key: ec().body, comment: 'b' }, session);
    const after = await keyring.list(session);
    assert.notEqual(after, first.identities, 'a changed keyring is a new array');
    assert.deepEqual(
      after.map((i) => i.comment),
      ['a', 'b'],
    );
    keyring.clear();
  });

  it('policy.selectForList decides the list on both paths; an unchanged selection keeps the cached array', async () => {
    let reverse = true;
    const seen: Array<{ keys: readonly KeyView[] }> = [];
    const policy: PolicyPort = {
      selectForList: (keys) => {
        seen.push({ keys });
        return reverse ? [...keys].reverse() : keys;
      },
      decideSign: () => ({ action: 'allow', reason: 'default' }),
    };
    const keyring = new Keyring({ policy });
    const session = AgentSession.inProcess();
    await keyring.add({ key: ed().body, comment: 'a' }, session);
    await keyring.add({ key: ec().body, comment: 'b', constraints: [{ type: 'confirm' }] }, session);
    const sync = keyring.answerSync({ type: 'request-identities' }, session);
    assert.ok(sync?.type === 'identities');
    assert.deepEqual(
      sync.identities.map((i) => i.comment),
      ['b', 'a'],
    );
    assert.deepEqual(
      (await keyring.list(session)).map((i) => i.comment),
      ['b', 'a'],
    );
    const views = seen[0].keys;
    assert.deepEqual(
      views.map((v) => [v.comment, v.fingerprint, v.type, v.source, v.name, v.confirm]),
      [
        ['a', fingerprint(ed().blob), 'ssh-ed25519', 'added', null, false],
        ['b', fingerprint(ec().blob), 'ecdsa-sha2-nistp256', 'added', null, true],
      ],
    );
    assert.equal(seen[1].keys[0], views[0], 'KeyViews are built once, at add time');
    reverse = false;
    assert.equal(await keyring.list(session), await keyring.list(session));
    keyring.clear();
  });

  it('policy and approvals see the session: process, destination (names from the namer, user per request), purpose', async () => {
    const host = testKey('ecdsa-384');
    const questions: SignQuestion[] = [];
    let answer = true;
    const approvals: ApprovalPort = {
      ask: async (q) => {
        questions.push(q);
        return { allowed: answer, reason: answer ? 'approved by test' : 'denied by test' };
      },
    };
    const decisions: PolicyDecision[] = [{ action: 'confirm', reason: 'rule 3' }];
    const policy: PolicyPort = {
      selectForList: (keys) => keys,
      decideSign: (q) => {
        questions.push(q);
        return decisions[0];
      },
    };
    const audit = memoryAudit();
    const keyring = new Keyring({
      policy,
      approvals,
      audit,
      confirmer: async () => assert.fail('askpass must not run when an ApprovalPort is given'),
    });
    const names: HostNames = { names: ['bastion.example', 'bastion'], port: 2222 };
    const namer = (blob: Buffer): HostNames => (blob.equals(host.blob) ? names : { names: [], port: null });
    const session = new AgentSession({ connectionId: 7, peer: { pid: 4242, uid: 1000 }, namer });
    await keyring.add({ key: ed().body, comment: 'k' }, session);
    assert.equal(session.destination(), null, 'unbound: no destination');
    const sessionId = await bind(keyring, session, host);
    const expected = {
      hostKey: fingerprint(host.blob),
      names: ['bastion.example', 'bastion'],
      host: 'bastion.example',
      port: 2222,
      user: null,
      forwarded: false,
      via: [],
    };
    assert.deepEqual(session.destination(), expected);
    assert.equal(session.destination(), session.destination(), 'computed once per binding');

    const login = userauth(sessionId, 'alice', ed());
    assert.equal(keyring.answerSync(signRequest(ed(), login), session), undefined, 'a question is never asked on the fast path');
    const sig = await keyring.sign(ed().blob, login, 0, session);
    assert.ok(verifySignature(ed().blob, login, sig));
    const q = questions.at(-1)!;
    assert.deepEqual(q.destination, { ...expected, user: 'alice' });
    assert.equal(q.purpose, 'login');
    assert.deepEqual(q.process, { pid: 4242, uid: 1000, exe: null, argv: null, unit: null, parents: null });
    assert.equal(q.key.fingerprint, fingerprint(ed().blob));

    answer = false;
    await assert.rejects(keyring.sign(ed().blob, login, 0, session), ConfirmDeniedError);
    const signs = audit.records.filter((r) => r.event === 'sign');
    assert.deepEqual(
      signs.map((r) => [r.decision, r.reason, r.purpose, r.destination?.user]),
      [
        ['allow', 'approved by test', 'login', 'alice'],
        ['deny', 'denied by test', 'login', 'alice'],
      ],
    );
    assert.ok(signs.every((r) => typeof r.ms === 'number' && r.process?.pid === 4242));
    keyring.clear();
  });

  it('a port that throws never throws out of the fast path; dispatch answers FAILURE', async () => {
    const policy: PolicyPort = {
      selectForList: () => {
        throw new Error('policy bug');
      },
      decideSign: () => {
        throw new Error('policy bug');
      },
    };
    const keyring = new Keyring({ policy });
    const session = AgentSession.inProcess();
    await keyring.add({ key: ed().body, comment: 'k' }, session);
    assert.equal(keyring.answerSync({ type: 'request-identities' }, session), undefined);
    assert.equal(keyring.answerSync(signRequest(ed()), session), undefined);
    assert.deepEqual(await dispatch(keyring, signRequest(ed()), session), { type: 'failure' });
    assert.deepEqual(await dispatch(keyring, { type: 'request-identities' }, session), { type: 'failure' });
    keyring.clear();
  });

  it('an ssh-add -c key is confirmed even when the policy allows', async () => {
    let asked = 0;
    const policy: PolicyPort = { selectForList: (k) => k, decideSign: () => ({ action: 'allow', reason: 'rule 1' }) };
    const keyring = new Keyring({
      policy,
      confirmer: async () => {
        asked++;
        return false;
      },
    });
    const session = AgentSession.inProcess();
    await keyring.add({ key: ed().body, comment: 'c', constraints: [{ type: 'confirm' }] }, session);
    assert.equal(keyring.answerSync(signRequest(ed()), session), undefined);
    await assert.rejects(keyring.sign(ed().blob, DATA, 0, session), ConfirmDeniedError);
    assert.equal(asked, 1);
    keyring.clear();
  });

  it('a pending approval is withdrawn when the agent locks, and the request refused', async () => {
    let signalled: AbortSignal | undefined;
    const approvals: ApprovalPort = {
      ask: (_q, signal) => {
        signalled = signal;
        return new Promise((resolve) =>
          signal.addEventListener('abort', () => resolve({ allowed: true, reason: 'answered late' })),
        );
      },
    };
    const keyring = new Keyring({ approvals });
    const session = AgentSession.inProcess();
    await keyring.add({ key: ed().body, comment: 'c', constraints: [{ type: 'confirm' }] }, session);
    const pending = keyring.sign(ed().blob, DATA, 0, session);
    await keyring.lock(Buffer.from('pw'), session);
    // Even an approval that arrives after the lock must not sign with a sealed key.
    await assert.rejects(pending, AgentLockedError);
    assert.equal(signalled?.aborted, true);
    keyring.clear();
  });

  it('a pending approval is withdrawn when its connection closes', async () => {
    const approvals: ApprovalPort = {
      ask: (_q, signal) =>
        new Promise((resolve) => signal.addEventListener('abort', () => resolve({ allowed: false, reason: 'withdrawn' }))),
    };
    const keyring = new Keyring({ approvals });
    const session = AgentSession.inProcess();
    await keyring.add({ key: ed().body, comment: 'c', constraints: [{ type: 'confirm' }] }, session);
    const pending = keyring.sign(ed().blob, DATA, 0, session);
    session.close();
    await assert.rejects(pending, ConfirmDeniedError);
    keyring.clear();
  });

  it('audit records add, remove, remove-all, lock, unlock and list, failures included', async () => {
    const audit = memoryAudit();
    const keyring = new Keyring({ audit });
    const session = AgentSession.inProcess();
    await keyring.add({ key: ed().body, comment: 'a' }, session);
    await keyring.add({ key: ec().body, comment: 'b' }, session);
    await keyring.list(session);
    await keyring.remove(ec().blob, session);
    await assert.rejects(keyring.remove(ec().blob, session), AgentError);
    await keyring.lock(Buffer.from('lock-passphrase-17'), session);
    keyring.answerSync({ type: 'request-identities' }, session);
    await assert.rejects(keyring.unlock(Buffer.from('wrong-passphrase-17'), session), AgentError);
    await keyring.unlock(Buffer.from('lock-passphrase-17'), session);
    await keyring.removeAll(session);
    assert.deepEqual(
      audit.records.map((r) => [r.event, r.decision, r.reason]),
      [
        ['add', 'allow', 'added'],
        ['add', 'allow', 'added'],
        ['list', 'allow', 'default'],
        ['remove', 'allow', 'removed'],
        ['remove', 'fail', 'no such identity'],
        ['lock', 'allow', 'locked'],
        ['list', 'fail', 'agent is locked'],
        ['unlock', 'fail', 'wrong passphrase'],
        ['unlock', 'allow', 'unlocked'],
        ['remove-all', 'allow', 'removed all'],
      ],
    );
    assert.deepEqual(audit.records[2].keys, [fingerprint(ed().blob), fingerprint(ec().blob)]);
    assert.equal(audit.records[3].key?.fingerprint, fingerprint(ec().blob));
    const text = JSON.stringify(audit.records);
    assert.ok(!/passphrase-17/.test(text), 'no passphrase in a record');
    keyring.clear();
  });

  it('a policy decision is reused per connection, key, destination and purpose until the configuration changes', async () => {
    let asked = 0;
    const counting: PolicyPort = {
      selectForList: (keys) => keys,
      decideSign: () => {
        asked++;
        return { action: 'allow', reason: 'rule 1' };
      },
    };
    const policy = new SwappablePolicy(counting);
    const keyring = new Keyring({ policy });
    const session = AgentSession.inProcess();
    await keyring.add({ key: ed().body, comment: 'k' }, session);
    await keyring.sign(ed().blob, DATA, 0, session);
    keyring.answerSync(signRequest(ed()), session);
    assert.equal(asked, 1, 'the same question on the same connection');
    await keyring.sign(ed().blob, sshsigSignedData('git', Buffer.from('commit')), 0, session);
    assert.equal(asked, 2, 'another purpose');
    await keyring.sign(ed().blob, DATA, 0, AgentSession.inProcess());
    assert.equal(asked, 3, 'another connection');
    policy.swap(counting);
    await keyring.sign(ed().blob, DATA, 0, session);
    assert.equal(asked, 4, 'after a reload');
    // A port without a generation promises nothing: asked every time.
    const plain = new Keyring({ policy: counting });
    await plain.add({ key: ed().body, comment: 'k' }, session);
    await plain.sign(ed().blob, DATA, 0, session);
    await plain.sign(ed().blob, DATA, 0, session);
    assert.equal(asked, 6);
    keyring.clear();
    plain.clear();
  });

  it('the peer process is read only when a record or a port needs it, and once per session', async () => {
    let reads = 0;
    const info: ProcessInfo = { pid: 4242, uid: 1000, exe: '/usr/bin/ssh', argv: ['ssh'], unit: null, parents: null };
    const session = (): AgentSession =>
      new AgentSession({
        connectionId: 1,
        peer: { pid: 4242, uid: 1000 },
        processSource: {
          read: () => {
            reads++;
            return info;
          },
          release: () => undefined,
        },
      });
    // An audit log that keeps nothing (`enabled = false`, or `list = false` for lists).
    const audit = { ...memoryAudit(), accepts: () => false };
    const quiet = new Keyring({
      audit,
      policy: { selectForList: (keys) => keys, decideSign: () => ({ action: 'allow', reason: 'r' }) },
    });
    const s1 = session();
    await quiet.add({ key: ed().body, comment: 'a' }, s1);
    await quiet.list(s1);
    assert.equal(reads, 0, 'a list with no record kept reads nothing');
    assert.equal(audit.records.length, 0);
    assert.ok(verifySignature(ed().blob, DATA, await quiet.sign(ed().blob, DATA, 0, s1)));
    assert.equal(reads, 1, 'a sign the policy judges reads it');
    await quiet.sign(ed().blob, DATA, 0, s1);
    assert.equal(reads, 1, 'once per session');
    quiet.clear();

    const kept = memoryAudit();
    const recording = new Keyring({ audit: kept });
    const s2 = session();
    await recording.list(s2);
    assert.equal(reads, 2);
    assert.equal(kept.records[0].process, info);
    recording.clear();
  });

  it('over a socket: each connection gets its session on accept, with the peer from SO_PEERCRED', async (t) => {
    const loaded = loadLibc();
    if (!('libc' in loaded) || typeof process.getuid !== 'function') {
      skipOrFail(t, `peer credentials unavailable here: ${'unavailable' in loaded ? loaded.unavailable : 'no getuid'}`);
      return;
    }
    const processes: Array<ProcessInfo | null> = [];
    let decision: PolicyDecision = { action: 'allow', reason: 'rule 1' };
    const policy: PolicyPort = {
      selectForList: (keys) => keys,
      decideSign: (q) => {
        processes.push(q.process);
        return decision;
      },
    };
    const keyring = new Keyring({ policy });
    const server = new AgentServer({ agent: keyring, peerCheck: uidPeerCheck(loaded.libc, process.getuid()) });
    const dir = mkdtempSync(join(tmpdir(), 'tsagent-gate-'));
    const client = new AgentClient({ socketPath: join(dir, 'agent.sock'), timeoutMs: 10_000 });
    try {
      await server.listen({ kind: 'path', path: join(dir, 'agent.sock') });
      await client.add({ key: ed().body, comment: 'k' });
      assert.equal((await client.list()).length, 1);
      assert.ok(verifySignature(ed().blob, DATA, await client.sign(ed().blob, DATA)));
      decision = { action: 'deny', reason: 'rule 2' };
      await assert.rejects(client.sign(ed().blob, DATA), AgentFailureError);
      assert.equal(processes.length, 2, 'one per sign decided');
      for (const p of processes)
        assert.deepEqual(p, { pid: process.pid, uid: process.getuid(), exe: null, argv: null, unit: null, parents: null });
    } finally {
      client.close();
      await server.close();
      keyring.clear();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('registered keys in the keyring (POLICY.md §3)', () => {
  it('listed before any use, decrypted on the asynchronous path once, then signed on the fast path', async () => {
    const audit = memoryAudit();
    const keyring = new Keyring({ audit });
    const session = AgentSession.inProcess();
    await keyring.add({ key: ec().body, comment: 'added' }, session);
    const source = memoryRegistered([ed()]);
    keyring.setRegistered(source, answer('right'));
    try {
      // Registered keys come first: they were "added" when the agent started.
      assert.deepEqual(
        (await keyring.list(session)).map((i) => i.comment),
        ['reg0', 'added'],
      );
      assert.equal(source.asked, 0);
      assert.equal(keyring.answerSync(signRequest(ed()), session), undefined, 'not loaded: handed on');
      const sig = await keyring.sign(ed().blob, DATA, 0, session);
      assert.ok(verifySignature(ed().blob, DATA, sig));
      assert.equal(source.asked, 1);
      const fast = keyring.answerSync(signRequest(ed()), session);
      assert.equal(fast?.type, 'sign-response');
      assert.equal(source.asked, 1);
      const decrypted = audit.records.filter((r) => r.event === 'key-decrypted');
      assert.deepEqual(
        decrypted.map((r) => [r.decision, r.key?.name]),
        [['allow', 'reg0']],
      );
      const facts = keyring.keyFacts();
      assert.deepEqual(
        facts.map((f) => [f.view.name, f.view.source, f.loaded]),
        [
          ['reg0', 'config', true],
          [null, 'added', true],
        ],
      );
      assert.ok(facts[0].lastUsed !== null && facts[1].lastUsed === null);
    } finally {
      keyring.clear();
    }
  });

  it('ssh-add -d / -D keep it listed with the private half dropped; lock drops it too; the approval hooks hear of each', async () => {
    const gone: string[] = [];
    let locks = 0;
    const approvals: ApprovalPort = {
      ask: async () => ({ allowed: true, reason: 'yes' }),
      keyGone: (fp) => gone.push(fp),
      agentLocked: () => locks++,
    };
    const keyring = new Keyring({ approvals });
    const session = AgentSession.inProcess();
    const source = memoryRegistered([ed()]);
    keyring.setRegistered(source, answer('right'));
    await keyring.add({ key: ec().body, comment: 'added' }, session);
    try {
      await keyring.sign(ed().blob, DATA, 0, session);
      await keyring.remove(ed().blob, session);
      assert.deepEqual(
        (await keyring.list(session)).map((i) => i.comment),
        ['reg0', 'added'],
      );
      assert.equal(keyring.keyFacts()[0].loaded, false);
      await keyring.sign(ed().blob, DATA, 0, session);
      await keyring.removeAll(session);
      assert.deepEqual(
        (await keyring.list(session)).map((i) => i.comment),
        ['reg0'],
      );
      assert.equal(keyring.keyFacts()[0].loaded, false);
      assert.deepEqual(gone.sort(), [fingerprint(ed().blob), fingerprint(ec().blob), fingerprint(ed().blob)].sort());
      await keyring.sign(ed().blob, DATA, 0, session);
      await keyring.lock(Buffer.from('pw'), session);
      assert.equal(locks, 1);
      assert.deepEqual(await keyring.list(session), [], 'nothing is listed while locked');
      await keyring.unlock(Buffer.from('pw'), session);
      assert.equal(keyring.keyFacts()[0].loaded, false);
      assert.equal(source.asked, 3);
      // A reload that no longer registers it: it goes (and its grants with it).
      keyring.setRegistered(memoryRegistered([]), answer('right'));
      assert.deepEqual(await keyring.list(session), []);
      assert.equal(gone.filter((f) => f === fingerprint(ed().blob)).length, 3);
    } finally {
      keyring.clear();
    }
  });

  it('unlock-key decrypts it before any signature; the first use then asks nothing', async () => {
    const keyring = new Keyring();
    const source = memoryRegistered([ed()]);
    keyring.setRegistered(source, () => assert.fail('asked for a passphrase'));
    try {
      await assert.rejects(keyring.unlockRegistered('nobody', Buffer.from('x')), KeyNotFoundError);
      await keyring.unlockRegistered('reg0', Buffer.from('right'));
      const fast = keyring.answerSync(signRequest(ed()), AgentSession.inProcess());
      assert.equal(fast?.type, 'sign-response');
    } finally {
      keyring.clear();
    }
  });
});
