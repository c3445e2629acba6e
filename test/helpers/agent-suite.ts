/**
 * One behaviour suite for every Agent: the in-process keyring, tsagent over its socket, and
 * OpenSSH's own ssh-agent. A case that passes against OpenSSH encodes OpenSSH's behaviour;
 * the few cases where tsagent deliberately differs are marked `tsagentOnly`.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/agent/agent';
import { AgentSession } from '../../src/agent/session';
import { AgentError } from '../../src/errors';
import { verifySignature } from '../../src/keys/verify';
import { encodeRequest } from '../../src/protocol/codec';
import type { Request, Response } from '../../src/protocol/messages';
import { SshReader } from '../../src/protocol/wire';
import { certifiedKey, testKey } from './keys';
import type { TestKey, TestKeyType } from './keys';

/** One connection to the agent under test, speaking raw requests. */
export interface RawConnection {
  request(req: Request): Promise<Response>;
  close(): void;
}

export interface AgentHarness {
  readonly impl: 'tsagent' | 'openssh';
  readonly agent: Agent;
  /** One raw request/reply on the same agent (protocol-level cases). */
  raw(req: Request): Promise<Response>;
  /** A further connection to the same agent, with its own session bindings. */
  connect(): Promise<RawConnection>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Environment the agent must run its confirm prompts with. */
  readonly askpassEnv: NodeJS.ProcessEnv;
}

export type HarnessFactory = (opts: HarnessOptions) => Promise<AgentHarness>;

const SIGNABLE: TestKeyType[] = ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa-2048'];
const DATA = Buffer.from('data to sign, as a userauth request would be');

function sigAlgorithm(sig: Buffer): string {
  return new SshReader(sig).text();
}

/** Sends `body` as-is under `messageType`, bypassing the typed encoder. */
function rawBody(messageType: number, body: Buffer): Request {
  return { type: 'unsupported', messageType, body };
}

function addBody(key: TestKey, comment: string, constraintBytes: Buffer): Buffer {
  const enc = encodeRequest({ type: 'add-identity', key: key.body, comment, constraints: [], constrained: true });
  return Buffer.concat([enc.subarray(1), constraintBytes]);
}

async function waitUntil(pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

export function runAgentSuite(name: string, factory: HarnessFactory): void {
  describe(`Agent behaviour: ${name}`, () => {
    let dir: string;
    let approveFile: string;
    let askpassEnv: NodeJS.ProcessEnv;
    let h: AgentHarness;
    let agent: Agent;
    /** What `agent` calls are made with: an unbound session (a socket client ignores it). */
    let s: AgentSession;

    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'tsagent-suite-'));
      approveFile = join(dir, 'approve');
      const script = join(dir, 'askpass');
      writeFileSync(script, `#!/bin/sh\n[ -f '${approveFile}' ] && exit 0\nexit 1\n`);
      chmodSync(script, 0o700);
      askpassEnv = { SSH_ASKPASS: script, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' };
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const fresh = async (): Promise<void> => {
      h = await factory({ askpassEnv });
      agent = h.agent;
      s = AgentSession.inProcess();
    };
    const done = async (): Promise<void> => {
      await h.close();
    };
    const tsagentOnly = (): boolean => h.impl !== 'tsagent';

    const test = (title: string, fn: () => Promise<void>, opts: { tsagentOnly?: boolean } = {}): void => {
      it(title, async (t) => {
        await fresh();
        try {
          if (opts.tsagentOnly && tsagentOnly()) {
            t.skip('tsagent behaviour that deliberately differs from OpenSSH');
            return;
          }
          await fn();
        } finally {
          await done();
        }
      });
    };

    test('starts empty', async () => {
      assert.deepEqual(await agent.list(s), []);
    });

    test('adds every key type and lists them in insertion order with comments', async () => {
      for (const t of SIGNABLE) await agent.add({ key: testKey(t).body, comment: `key ${t}` }, s);
      const ids = await agent.list(s);
      assert.deepEqual(
        ids.map((i) => i.comment),
        SIGNABLE.map((t) => `key ${t}`),
      );
      ids.forEach((id, i) => assert.ok(id.blob.equals(testKey(SIGNABLE[i]).blob)));
    });

    test('signs with every key type; signatures verify', async () => {
      for (const t of SIGNABLE) {
        const k = testKey(t);
        await agent.add({ key: k.body, comment: t }, s);
        const sig = await agent.sign(k.blob, DATA, 0, s);
        assert.ok(verifySignature(k.blob, DATA, sig), `${t} signature verifies`);
        assert.equal(verifySignature(k.blob, Buffer.from('other data'), sig), false);
      }
    });

    test('RSA flags pick the algorithm: 0 ssh-rsa, 2 rsa-sha2-256, 4 rsa-sha2-512, 6 rsa-sha2-256', async () => {
      const k = testKey('rsa-2048');
      await agent.add({ key: k.body, comment: 'rsa' }, s);
      const expect: Array<[number, string]> = [
        [0, 'ssh-rsa'],
        [2, 'rsa-sha2-256'],
        [4, 'rsa-sha2-512'],
        [6, 'rsa-sha2-256'],
      ];
      for (const [flags, alg] of expect) {
        const sig = await agent.sign(k.blob, DATA, flags, s);
        assert.equal(sigAlgorithm(sig), alg);
        assert.ok(verifySignature(k.blob, DATA, sig));
      }
    });

    test('flags are ignored for non-RSA keys', async () => {
      const k = testKey('ed25519');
      await agent.add({ key: k.body, comment: 'e' }, s);
      assert.equal(sigAlgorithm(await agent.sign(k.blob, DATA, 4, s)), 'ssh-ed25519');
      const e = testKey('ecdsa-384');
      await agent.add({ key: e.body, comment: 'e' }, s);
      assert.equal(sigAlgorithm(await agent.sign(e.blob, DATA, 2, s)), 'ecdsa-sha2-nistp384');
    });

    test('re-adding a held key replaces its comment in place, no duplicate', async () => {
      await agent.add({ key: testKey('ed25519').body, comment: 'first' }, s);
      await agent.add({ key: testKey('ecdsa-256').body, comment: 'second' }, s);
      await agent.add({ key: testKey('ed25519').body, comment: 'renamed' }, s);
      assert.deepEqual(
        (await agent.list(s)).map((i) => i.comment),
        ['renamed', 'second'],
      );
    });

    test('signing with a key it does not hold fails', async () => {
      await assert.rejects(agent.sign(testKey('ed25519').blob, DATA, 0, s), AgentError);
      assert.equal((await h.raw({ type: 'sign', keyBlob: Buffer.from('garbage'), data: DATA, flags: 0 })).type, 'failure');
    });

    test('remove drops exactly that key; removing an absent key fails', async () => {
      await agent.add({ key: testKey('ed25519').body, comment: 'a' }, s);
      await agent.add({ key: testKey('ecdsa-256').body, comment: 'b' }, s);
      await agent.remove(testKey('ed25519').blob, s);
      assert.deepEqual(
        (await agent.list(s)).map((i) => i.comment),
        ['b'],
      );
      await assert.rejects(agent.remove(testKey('ed25519').blob, s), AgentError);
    });

    test('remove-all empties the agent and succeeds when already empty; legacy message 9 too', async () => {
      await agent.add({ key: testKey('ed25519').body, comment: 'a' }, s);
      await agent.removeAll(s);
      assert.deepEqual(await agent.list(s), []);
      await agent.removeAll(s);
      await agent.add({ key: testKey('ed25519').body, comment: 'a' }, s);
      assert.equal((await h.raw({ type: 'remove-all-identities', legacy: true })).type, 'success');
      assert.deepEqual(await agent.list(s), []);
    });

    test('RSA keys under 1024 bits are refused', async () => {
      await assert.rejects(agent.add({ key: testKey('rsa-768').body, comment: 'small' }, s), AgentError);
      assert.deepEqual(await agent.list(s), []);
    });

    // OpenSSH 9.2 accepts this ed25519 key and then makes signatures that do not verify;
    // tsagent checks the halves against each other at add time.
    test(
      'a key whose private half does not match its public half is refused',
      async () => {
        const a = testKey('ed25519').body;
        const other = testKey('ecdsa-256'); // just to have a second key generated
        assert.ok(other);
        if (a.kind !== 'ed25519') throw new Error('unexpected');
        const wrong = Buffer.from(a.secret);
        wrong[0] = wrong[0] ^ 0xff; // seed no longer matches the public key
        await assert.rejects(agent.add({ key: { ...a, secret: wrong }, comment: 'bad' }, s), AgentError);
        assert.deepEqual(await agent.list(s), []);
      },
      { tsagentOnly: true },
    );

    test('unknown, duplicated and malformed constraints fail closed: key not added', async () => {
      const k = testKey('ed25519');
      const cases: Array<[string, Buffer]> = [
        ['unknown constraint byte', Buffer.from([3, 0, 0, 0, 1])],
        [
          'unknown extension',
          Buffer.concat([Buffer.from([255, 0, 0, 0, 11]), Buffer.from('foo@example'), Buffer.from([0, 0, 0, 0])]),
        ],
        ['duplicate lifetime', Buffer.from([1, 0, 0, 0, 60, 1, 0, 0, 0, 60])],
        ['truncated lifetime', Buffer.from([1, 0, 0])],
        // associated-certs applies to smartcard adds only (PROTOCOL.agent §3).
        [
          'associated-certs on a plain add',
          Buffer.concat([
            Buffer.from([255, 0, 0, 0, 32]),
            Buffer.from('associated-certs-v00@openssh.com'),
            Buffer.from([0, 0, 0, 0, 0]),
          ]),
        ],
      ];
      for (const [what, bytes] of cases) {
        const resp = await h.raw(rawBody(25, addBody(k, what, bytes)));
        assert.equal(resp.type, 'failure', what);
        assert.deepEqual(await agent.list(s), [], `${what}: nothing added`);
      }
    });

    test('truncated and trailing-byte requests get FAILURE; the connection keeps serving', async () => {
      const k = testKey('ed25519');
      await agent.add({ key: k.body, comment: 'k' }, s);
      const sign = encodeRequest({ type: 'sign', keyBlob: k.blob, data: DATA, flags: 0 });
      assert.equal((await h.raw(rawBody(13, sign.subarray(1, sign.length - 2)))).type, 'failure');
      const add = encodeRequest({
        type: 'add-identity',
        key: testKey('ecdsa-256').body,
        comment: 'x',
        constraints: [],
        constrained: false,
      });
      assert.equal((await h.raw(rawBody(17, Buffer.concat([add.subarray(1), Buffer.from([0])])))).type, 'failure');
      assert.equal((await h.raw(rawBody(17, add.subarray(1, 30)))).type, 'failure');
      assert.equal((await agent.list(s)).length, 1);
    });

    test('unknown and smartcard message types get FAILURE; the connection keeps serving', async () => {
      for (const type of [0, 1, 3, 7, 8, 10, 20, 21, 24, 26, 100, 255]) {
        assert.equal((await h.raw(rawBody(type, Buffer.alloc(0)))).type, 'failure', `type ${type}`);
      }
      assert.deepEqual(await agent.list(s), []);
    });

    test('unknown extension gets FAILURE', async () => {
      const resp = await h.raw({ type: 'extension', name: 'no-such-extension@example.com', contents: Buffer.alloc(0) });
      assert.equal(resp.type, 'failure');
    });

    test('lifetime constraint removes the key when it expires', async () => {
      const k = testKey('ed25519');
      await agent.add({ key: k.body, comment: 'short', constraints: [{ type: 'lifetime', seconds: 1 }] }, s);
      await agent.add({ key: testKey('ecdsa-256').body, comment: 'long' }, s);
      assert.equal((await agent.list(s)).length, 2);
      await waitUntil(async () => (await agent.list(s)).length === 1, 5000, 'the key to expire');
      assert.deepEqual(
        (await agent.list(s)).map((i) => i.comment),
        ['long'],
      );
      await assert.rejects(agent.sign(k.blob, DATA, 0, s), AgentError);
    });

    test('confirm constraint asks $SSH_ASKPASS before each signature', async () => {
      const k = testKey('ed25519');
      await agent.add({ key: k.body, comment: 'confirm me', constraints: [{ type: 'confirm' }] }, s);
      await assert.rejects(agent.sign(k.blob, DATA, 0, s), AgentError, 'askpass says no');
      writeFileSync(approveFile, '');
      try {
        assert.ok(verifySignature(k.blob, DATA, await agent.sign(k.blob, DATA, 0, s)));
      } finally {
        unlinkSync(approveFile);
      }
      await assert.rejects(agent.sign(k.blob, DATA, 0, s), AgentError, 'asked again');
    });

    test('lock: list empty, everything else fails; unlock restores the keys', async () => {
      const k = testKey('ed25519');
      await agent.add({ key: k.body, comment: 'k' }, s);
      await agent.lock(Buffer.from('correct horse'), s);
      assert.deepEqual(await agent.list(s), []);
      await assert.rejects(agent.sign(k.blob, DATA, 0, s), AgentError);
      await assert.rejects(agent.add({ key: testKey('ecdsa-256').body, comment: 'x' }, s), AgentError);
      await assert.rejects(agent.remove(k.blob, s), AgentError);
      await assert.rejects(agent.removeAll(s), AgentError);
      await assert.rejects(agent.lock(Buffer.from('again'), s), AgentError);
      await assert.rejects(agent.unlock(Buffer.from('wrong'), s), AgentError);
      await agent.unlock(Buffer.from('correct horse'), s);
      assert.deepEqual(
        (await agent.list(s)).map((i) => i.comment),
        ['k'],
      );
      assert.ok(verifySignature(k.blob, DATA, await agent.sign(k.blob, DATA, 0, s)));
    });

    test('lock with an empty passphrase fails; unlock when not locked fails', async () => {
      await assert.rejects(agent.lock(Buffer.alloc(0), s), AgentError);
      await assert.rejects(agent.unlock(Buffer.from('x'), s), AgentError);
      await agent.lock(Buffer.from('x'), s);
      await agent.unlock(Buffer.from('x'), s);
    });

    test('a certificate is an identity of its own: listed, signs, removed alone', async () => {
      for (const t of ['ed25519', 'ecdsa-256', 'rsa-2048'] as const) {
        const key = testKey(t);
        const cert = certifiedKey(key);
        await agent.add({ key: key.body, comment: `${t} key` }, s);
        await agent.add({ key: cert.body, comment: `${t} cert` }, s);
        const ids = await agent.list(s);
        assert.ok(
          ids.some((i) => i.blob.equals(cert.blob)),
          'certificate listed',
        );
        assert.ok(
          ids.some((i) => i.blob.equals(key.blob)),
          'plain key listed',
        );
        const sig = await agent.sign(cert.blob, DATA, t === 'rsa-2048' ? 4 : 0, s);
        assert.ok(verifySignature(cert.blob, DATA, sig));
        if (t === 'rsa-2048') assert.equal(sigAlgorithm(sig), 'rsa-sha2-512');
        await agent.remove(cert.blob, s);
        assert.ok(!(await agent.list(s)).some((i) => i.blob.equals(cert.blob)));
        assert.ok((await agent.list(s)).some((i) => i.blob.equals(key.blob)));
        await agent.removeAll(s);
      }
    });

    test(
      'query lists the supported extensions',
      async () => {
        const r = await agent.extension('query', Buffer.alloc(0), s);
        assert.equal(r.type, 'extension-response');
        const rd = new SshReader(r.contents);
        assert.equal(rd.text(), 'query');
        const names: string[] = [];
        while (!rd.atEnd) names.push(rd.text());
        assert.ok(names.includes('query'));
      },
      { tsagentOnly: true },
    );
  });
}
