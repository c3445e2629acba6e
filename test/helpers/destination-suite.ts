/**
 * Session binding and destination-constrained keys (`ssh-add -h`), at the protocol level with
 * hand-built session-bind and userauth messages. Like the main suite it runs against tsagent
 * and against OpenSSH's own agent, so every rule here is OpenSSH's.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { importPrivateKey } from '../../src/keys/import-private';
import { certificateBlobFromLine, parsePrivateKeyFile } from '../../src/keys/key-file';
import type { HeldKey } from '../../src/keys/held-key';
import { Signer } from '../../src/keys/sign';
import { verifySignature } from '../../src/keys/verify';
import type { DestinationConstraint, DestinationHop } from '../../src/protocol/destination';
import type { Request, Response } from '../../src/protocol/messages';
import { encodeSessionBind } from '../../src/protocol/session-bind';
import { SshWriter } from '../../src/protocol/wire';
import type { AgentHarness, HarnessFactory, RawConnection } from './agent-suite';
import { testKey } from './keys';
import type { TestKey } from './keys';

interface HostKey {
  readonly blob: Buffer;
  readonly held: HeldKey;
}

/** Bounded, like every wait in the suite. */
const KEYGEN_OPTIONS = { stdio: 'ignore', timeout: 60_000, killSignal: 'SIGKILL' } as const;

function keygen(dir: string, name: string): HostKey {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-N', '', '-t', 'ed25519', '-f', path], KEYGEN_OPTIONS);
  const held = importPrivateKey(parsePrivateKeyFile(readFileSync(path)).body);
  return { blob: held.publicBlob, held };
}

/** A host key whose public half is a host certificate for `principal`, signed by `ca`. */
function hostCert(dir: string, name: string, caName: string, principal: string): HostKey {
  const k = keygen(dir, name);
  execFileSync(
    'ssh-keygen',
    ['-q', '-s', join(dir, caName), '-h', '-I', name, '-n', principal, '-V', '-5m:+1h', join(dir, `${name}.pub`)],
    KEYGEN_OPTIONS,
  );
  return { blob: certificateBlobFromLine(readFileSync(join(dir, `${name}-cert.pub`), 'utf8')), held: k.held };
}

async function bindRequest(host: HostKey, sessionId: Buffer, forwarding: boolean, signer: HostKey = host): Promise<Request> {
  const signature = await new Signer().sign(signer.held, sessionId, 0);
  return {
    type: 'extension',
    name: 'session-bind@openssh.com',
    contents: encodeSessionBind({ hostKey: host.blob, sessionId, signature, isForwarding: forwarding }),
  };
}

/** What `ssh` asks the agent to sign for publickey authentication (RFC 4252 §7). */
function userauth(sessionId: Buffer, user: string, key: TestKey, opts: { hostKey?: Buffer; alg?: string } = {}): Buffer {
  const w = new SshWriter()
    .string(sessionId)
    .byte(50)
    .string(user)
    .string('ssh-connection')
    .string(opts.hostKey ? 'publickey-hostbound-v00@openssh.com' : 'publickey')
    .bool(true)
    .string(opts.alg ?? 'ssh-ed25519')
    .string(key.blob);
  if (opts.hostKey) w.string(opts.hostKey);
  return Buffer.from(w.finish());
}

const hop = (hostname: string, keys: Array<{ blob: Buffer; isCa?: boolean }>, user = ''): DestinationHop => ({
  user,
  hostname,
  reserved: Buffer.alloc(0),
  keys: keys.map((k) => ({ blob: k.blob, isCa: k.isCa ?? false })),
});
const ORIGIN = hop('', []);
const rule = (from: DestinationHop, to: DestinationHop): DestinationConstraint => ({ from, to, reserved: Buffer.alloc(0) });

function addRestricted(key: TestKey, constraints: DestinationConstraint[], comment = 'restricted'): Request {
  return {
    type: 'add-identity',
    key: key.body,
    comment,
    constraints: [{ type: 'restrict-destination', constraints }],
    constrained: true,
  };
}

async function listed(c: RawConnection, key: TestKey): Promise<boolean> {
  const r = await c.request({ type: 'request-identities' });
  assert.equal(r.type, 'identities');
  return r.identities.some((i) => i.blob.equals(key.blob));
}

function isFailure(r: Response): boolean {
  return r.type === 'failure' || r.type === 'extension-failure';
}

export function runDestinationSuite(name: string, factory: HarnessFactory): void {
  describe(`Session binding and destination constraints: ${name}`, () => {
    let dir: string;
    let hostA: HostKey;
    let hostB: HostKey;
    let h: AgentHarness;
    const conns: RawConnection[] = [];
    const key = (): TestKey => testKey('ed25519');

    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'tsagent-dest-'));
      hostA = keygen(dir, 'host-a');
      hostB = keygen(dir, 'host-b');
      execFileSync('ssh-keygen', ['-q', '-N', '', '-t', 'ed25519', '-f', join(dir, 'host-ca')], KEYGEN_OPTIONS);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const conn = async (): Promise<RawConnection> => {
      const c = await h.connect();
      conns.push(c);
      return c;
    };
    /** A connection bound along `path` (each hop forwarding except the last, as ssh does). */
    const boundConnection = async (path: Array<[HostKey, Buffer]>, lastForwarding = false): Promise<RawConnection> => {
      const c = await conn();
      for (let i = 0; i < path.length; i++) {
        const [host, sid] = path[i];
        const fwd = i < path.length - 1 || lastForwarding;
        assert.equal((await c.request(await bindRequest(host, sid, fwd))).type, 'success', `bind hop ${i}`);
      }
      return c;
    };

    const test = (title: string, fn: () => Promise<void>, opts: { tsagentOnly?: boolean } = {}): void => {
      it(title, async (t) => {
        h = await factory({ askpassEnv: {} });
        try {
          if (opts.tsagentOnly && h.impl !== 'tsagent') {
            t.skip('newer OpenSSH behaviour than the reference agent on this machine');
            return;
          }
          await fn();
        } finally {
          for (const c of conns.splice(0)) c.close();
          await h.close();
        }
      });
    };

    test('session-bind with a valid host key signature succeeds; a bad signature fails', async () => {
      const c = await conn();
      assert.equal((await c.request(await bindRequest(hostA, randomBytes(32), false))).type, 'success');
      const c2 = await conn();
      assert.ok(isFailure(await c2.request(await bindRequest(hostA, randomBytes(32), false, hostB))), 'signed by the wrong key');
      const c3 = await conn();
      const req = await bindRequest(hostA, randomBytes(32), false);
      assert.ok(req.type === 'extension');
      const tampered = Buffer.from(req.contents);
      tampered[tampered.length - 3] = tampered[tampered.length - 3] ^ 1; // inside the signature
      assert.ok(isFailure(await c3.request({ ...req, contents: tampered })));
      assert.ok(isFailure(await c3.request({ ...req, contents: req.contents.subarray(0, 20) })), 'truncated');
    });

    // OpenSSH 9.2 defines AGENT_MAX_SID_LEN but only later versions enforce it on bind.
    test(
      'session-bind refuses session ids over 128 bytes',
      async () => {
        const c = await conn();
        assert.ok(isFailure(await c.request(await bindRequest(hostA, randomBytes(129), false))));
        assert.equal((await c.request(await bindRequest(hostA, randomBytes(128), false))).type, 'success');
      },
      { tsagentOnly: true },
    );

    test('no binding after one made for authentication; repeats of a forwarding bind are fine', async () => {
      const c = await conn();
      const sid = randomBytes(32);
      assert.equal((await c.request(await bindRequest(hostA, sid, true))).type, 'success');
      assert.equal((await c.request(await bindRequest(hostA, sid, true))).type, 'success', 'same binding again');
      assert.ok(isFailure(await c.request(await bindRequest(hostB, sid, true))), 'same session id, other key');
      assert.equal((await c.request(await bindRequest(hostB, randomBytes(32), false))).type, 'success');
      assert.ok(isFailure(await c.request(await bindRequest(hostA, randomBytes(32), true))), 'after an auth binding');
    });

    test('at most 16 bindings per connection', async () => {
      const c = await conn();
      for (let i = 0; i < 16; i++)
        assert.equal((await c.request(await bindRequest(hostA, randomBytes(32), true))).type, 'success', `bind ${i}`);
      assert.ok(isFailure(await c.request(await bindRequest(hostA, randomBytes(32), true))));
    });

    test('a key restricted to host A: usable only in a session bound to A, for userauth data', async () => {
      const k = key();
      const local = await conn();
      assert.equal((await local.request(addRestricted(k, [rule(ORIGIN, hop('host-a', [hostA]))]))).type, 'success');
      assert.ok(await listed(local, k), 'listed on an unbound (local) connection');
      const anyData = Buffer.from('not a userauth request');
      assert.equal(
        (await local.request({ type: 'sign', keyBlob: k.blob, data: anyData, flags: 0 })).type,
        'failure',
        'no signing unbound',
      );

      const sid = randomBytes(32);
      const toA = await boundConnection([[hostA, sid]]);
      assert.ok(await listed(toA, k));
      const ok = await toA.request({ type: 'sign', keyBlob: k.blob, data: userauth(sid, 'alice', k), flags: 0 });
      assert.equal(ok.type, 'sign-response');
      assert.ok(ok.type === 'sign-response' && verifySignature(k.blob, userauth(sid, 'alice', k), ok.signature));
      const hostbound = await toA.request({
        type: 'sign',
        keyBlob: k.blob,
        data: userauth(sid, 'alice', k, { hostKey: hostA.blob }),
        flags: 0,
      });
      assert.equal(hostbound.type, 'sign-response', 'hostbound request naming the bound host');
      const refused: Array<[string, Buffer]> = [
        ['data that is not a userauth request', anyData],
        ['wrong session id', userauth(randomBytes(32), 'alice', k)],
        ['hostbound to another host key', userauth(sid, 'alice', k, { hostKey: hostB.blob })],
        ['userauth for another key', userauth(sid, 'alice', testKey('ecdsa-256'), { alg: 'ecdsa-sha2-nistp256' })],
        ['algorithm of another key type', userauth(sid, 'alice', k, { alg: 'rsa-sha2-512' })],
      ];
      for (const [what, data] of refused) {
        assert.equal((await toA.request({ type: 'sign', keyBlob: k.blob, data, flags: 0 })).type, 'failure', what);
      }

      const toB = await boundConnection([[hostB, randomBytes(32)]]);
      assert.equal(await listed(toB, k), false, 'hidden from a session to host B');
      assert.equal(
        (await toB.request({ type: 'remove-identity', keyBlob: k.blob })).type,
        'failure',
        'cannot remove a hidden key',
      );
      assert.equal(
        (await toB.request(addRestricted(k, [rule(ORIGIN, hop('host-b', [hostB]))]))).type,
        'failure',
        'cannot re-add a hidden key',
      );
      assert.ok(await listed(local, k), 'still held');
    });

    test('the to-user of a constraint is a pattern matched against the userauth user', async () => {
      const k = key();
      const local = await conn();
      assert.equal((await local.request(addRestricted(k, [rule(ORIGIN, hop('host-a', [hostA], 'al*'))]))).type, 'success');
      const sid = randomBytes(32);
      const toA = await boundConnection([[hostA, sid]]);
      assert.equal(
        (await toA.request({ type: 'sign', keyBlob: k.blob, data: userauth(sid, 'alice', k), flags: 0 })).type,
        'sign-response',
      );
      assert.equal(
        (await toA.request({ type: 'sign', keyBlob: k.blob, data: userauth(sid, 'bob', k), flags: 0 })).type,
        'failure',
      );
    });

    // OpenSSH after 9.2 ("ssh-agent: record failed session-bind attempts"): a connection whose
    // bind failed is not treated as local use.
    test(
      'a failed bind hides restricted keys on that connection',
      async () => {
        const k = key();
        const local = await conn();
        assert.equal((await local.request(addRestricted(k, [rule(ORIGIN, hop('host-a', [hostA]))]))).type, 'success');
        const c = await conn();
        assert.ok(isFailure(await c.request(await bindRequest(hostA, randomBytes(32), false, hostB))));
        assert.equal(await listed(c, k), false);
        assert.equal((await c.request({ type: 'sign', keyBlob: k.blob, data: Buffer.from('x'), flags: 0 })).type, 'failure');
      },
      { tsagentOnly: true },
    );

    test('multi-hop: A then B through a forwarding, only as the constraints allow', async () => {
      const k = key();
      const local = await conn();
      const rules = [rule(ORIGIN, hop('host-a', [hostA])), rule(hop('host-a', [hostA]), hop('host-b', [hostB]))];
      assert.equal((await local.request(addRestricted(k, rules))).type, 'success');
      const sid1 = randomBytes(32);
      const sid2 = randomBytes(32);
      const viaA = await boundConnection([
        [hostA, sid1],
        [hostB, sid2],
      ]);
      assert.ok(await listed(viaA, k));
      const data = userauth(sid2, 'alice', k, { hostKey: hostB.blob });
      assert.equal((await viaA.request({ type: 'sign', keyBlob: k.blob, data, flags: 0 })).type, 'sign-response');
      assert.equal(
        (await viaA.request({ type: 'sign', keyBlob: k.blob, data: userauth(sid2, 'alice', k), flags: 0 })).type,
        'failure',
        'past the first hop the request must name the host key',
      );
      const forwardingOnly = await boundConnection([[hostA, randomBytes(32)]], true);
      assert.ok(await listed(forwardingOnly, k), 'visible on A: usable beyond it');
      assert.equal(
        (await forwardingOnly.request({ type: 'sign', keyBlob: k.blob, data: userauth(sid1, 'alice', k), flags: 0 })).type,
        'failure',
        'never signs on a hop bound for forwarding',
      );
      const reversed = await boundConnection([
        [hostB, randomBytes(32)],
        [hostA, randomBytes(32)],
      ]);
      assert.equal(await listed(reversed, k), false, 'B then A is not a permitted path');
    });

    test('a key permitted at A but not beyond is hidden on the far side of a forward through A', async () => {
      const k = key();
      const local = await conn();
      assert.equal((await local.request(addRestricted(k, [rule(ORIGIN, hop('host-a', [hostA]))]))).type, 'success');
      const forwarded = await boundConnection([[hostA, randomBytes(32)]], true);
      assert.equal(await listed(forwarded, k), false);
      const onward = await boundConnection([
        [hostA, randomBytes(32)],
        [hostB, randomBytes(32)],
      ]);
      assert.equal(await listed(onward, k), false);
    });

    test('host certificates: a CA key marked is_ca permits hosts whose certificate names them', async () => {
      const k = key();
      const ca = { blob: importPrivateKey(parsePrivateKeyFile(readFileSync(join(dir, 'host-ca'))).body).publicBlob, isCa: true };
      const local = await conn();
      assert.equal((await local.request(addRestricted(k, [rule(ORIGIN, hop('*.example.com', [ca]))]))).type, 'success');
      const good = hostCert(dir, `cert-good-${Date.now()}`, 'host-ca', '*.example.com');
      const sid = randomBytes(32);
      const c = await boundConnection([[good, sid]]);
      assert.ok(await listed(c, k));
      assert.equal(
        (await c.request({ type: 'sign', keyBlob: k.blob, data: userauth(sid, 'alice', k), flags: 0 })).type,
        'sign-response',
      );
      const other = hostCert(dir, `cert-other-${Date.now()}`, 'host-ca', 'elsewhere.org');
      const c2 = await boundConnection([[other, randomBytes(32)]]);
      assert.equal(await listed(c2, k), false, 'certificate for another name');
      const plain = await boundConnection([[hostA, randomBytes(32)]]);
      assert.equal(await listed(plain, k), false, 'a plain host key is not matched by a CA entry');
    });

    test('malformed destination constraints fail closed: the key is not added', async () => {
      const k = key();
      const c = await conn();
      const bad: Array<[string, DestinationConstraint[]]> = [
        ['from-user set', [rule(hop('', [], 'root'), hop('host-a', [hostA]))]],
        ['from hostname without keys', [rule(hop('host-x', []), hop('host-a', [hostA]))]],
        ['from keys without hostname', [rule(hop('', [hostB]), hop('host-a', [hostA]))]],
        ['to without hostname', [rule(ORIGIN, hop('', [hostA]))]],
        ['to without keys', [rule(ORIGIN, hop('host-a', []))]],
        ['reserved constraint field', [{ ...rule(ORIGIN, hop('host-a', [hostA])), reserved: Buffer.from('x') }]],
        ['reserved hop field', [rule(ORIGIN, { ...hop('host-a', [hostA]), reserved: Buffer.from('x') })]],
        ['garbage host key', [rule(ORIGIN, hop('host-a', [{ blob: Buffer.from('not a key') }]))]],
      ];
      for (const [what, cs] of bad) {
        assert.equal((await c.request(addRestricted(k, cs, what))).type, 'failure', what);
        assert.equal(await listed(c, k), false, `${what}: not added`);
      }
    });

    test(
      'query names session-bind',
      async () => {
        const c = await conn();
        const r = await c.request({ type: 'extension', name: 'query', contents: Buffer.alloc(0) });
        assert.equal(r.type, 'extension-response');
        assert.ok(r.type === 'extension-response' && r.contents.includes(Buffer.from('session-bind@openssh.com')));
      },
      { tsagentOnly: true },
    );

    test(
      'session-bind is accepted while the agent is locked (OpenSSH >= 10)',
      async () => {
        const c = await conn();
        assert.equal((await c.request({ type: 'lock', passphrase: Buffer.from('pw') })).type, 'success');
        assert.equal((await c.request(await bindRequest(hostA, randomBytes(32), false))).type, 'success');
        assert.equal(
          (await c.request({ type: 'extension', name: 'query', contents: Buffer.alloc(0) })).type,
          'failure',
          'other extensions are not',
        );
      },
      { tsagentOnly: true },
    );
  });
}
