/**
 * A lock that really locks: while locked the keyring holds no KeyObject and no plaintext
 * private key bytes — checked by walking the keyring's whole object graph — signing fails,
 * a wrong passphrase restores nothing, and the right one brings the same keys back.
 */
import assert from 'node:assert/strict';
import { KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { Keyring } from '../../src/agent/keyring';
import { AgentSession } from '../../src/agent/session';
import { AgentError } from '../../src/errors';
import { verifySignature } from '../../src/keys/verify';
import { mpintToUnsigned } from '../../src/protocol/wire';
import type { PrivateKeyBody } from '../../src/protocol/private-key';
import { testKey } from '../helpers/keys';

const TYPES = ['ed25519', 'ecdsa-256', 'ecdsa-521', 'rsa-2048'] as const;
const DATA = Buffer.from('sign me');
const s = AgentSession.inProcess();

/** Every object reachable from `root` through properties, Map/Set entries and arrays. */
function reachable(root: unknown): unknown[] {
  const seen = new Set<unknown>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof KeyObject || Buffer.isBuffer(v) || ArrayBuffer.isView(v)) continue;
    if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
    else if (v instanceof Set) for (const x of v) stack.push(x);
    for (const k of Object.getOwnPropertyNames(v)) {
      const d = Object.getOwnPropertyDescriptor(v, k);
      if (d !== undefined && 'value' in d) stack.push(d.value);
    }
  }
  return [...seen];
}

/** The secret scalar of a key body, the bytes that must not sit in memory while locked. */
function secretOf(body: PrivateKeyBody): Buffer {
  switch (body.kind) {
    case 'ed25519':
      return body.secret.subarray(0, 32);
    case 'rsa':
      return mpintToUnsigned(body.d);
    case 'ecdsa':
      return mpintToUnsigned(body.d);
    default:
      throw new Error('unexpected');
  }
}

describe('keyring lock seals the keys', () => {
  it('locked: no KeyObject, no plaintext secret, no signature; unlocked: the same keys sign again', async () => {
    const keyring = new Keyring({ confirmer: async () => true });
    for (const t of TYPES) await keyring.add({ key: testKey(t).body, comment: t }, s);
    const before = reachable(keyring);
    assert.equal(before.filter((v) => v instanceof KeyObject).length, TYPES.length, 'one KeyObject per key before locking');

    await keyring.lock(Buffer.from('correct horse battery staple'), s);
    assert.deepEqual(keyring.secretsState(), { identities: TYPES.length, keyObjects: 0, sealed: TYPES.length });
    const locked = reachable(keyring);
    assert.equal(locked.filter((v) => v instanceof KeyObject).length, 0, 'no KeyObject reachable while locked');
    const buffers = locked.filter((v): v is Uint8Array => ArrayBuffer.isView(v) && !(v instanceof DataView));
    for (const t of TYPES) {
      const secret = secretOf(testKey(t).body);
      for (const b of buffers)
        assert.equal(Buffer.from(b.buffer, b.byteOffset, b.byteLength).indexOf(secret), -1, `${t} secret not in memory`);
      await assert.rejects(keyring.sign(testKey(t).blob, DATA, 0, s), AgentError);
    }

    await assert.rejects(keyring.unlock(Buffer.from('wrong'), s), AgentError);
    assert.deepEqual(
      keyring.secretsState(),
      { identities: TYPES.length, keyObjects: 0, sealed: TYPES.length },
      'a wrong passphrase restores nothing',
    );

    await keyring.unlock(Buffer.from('correct horse battery staple'), s);
    assert.deepEqual(keyring.secretsState(), { identities: TYPES.length, keyObjects: TYPES.length, sealed: 0 });
    for (const t of TYPES) {
      const k = testKey(t);
      assert.ok(verifySignature(k.blob, DATA, await keyring.sign(k.blob, DATA, 0, s)), `${t} signs after unlock`);
    }
    assert.deepEqual(
      (await keyring.list(s)).map((i) => i.comment),
      [...TYPES],
    );
  });

  it('a key that expires while locked is gone after unlock; SIGUSR1-style clear works while locked', async () => {
    const keyring = new Keyring();
    await keyring.add({ key: testKey('ed25519').body, comment: 'a' }, s);
    await keyring.lock(Buffer.from('pw'), s);
    keyring.clear();
    await keyring.unlock(Buffer.from('pw'), s);
    assert.deepEqual(await keyring.list(s), []);
  });
});
