/**
 * Purpose classification is strict and total (POLICY.md §1): exact SSHSIG and userauth data
 * are recognised; anything truncated, padded or odd is `other`, and nothing ever throws.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { signPurpose } from '../../src/context/purpose';
import { parseSshsigSignedData } from '../../src/protocol/sshsig';
import { SshWriter } from '../../src/protocol/wire';
import { sshsigSignedData } from '../helpers/sshsig';
import { testKey } from '../helpers/keys';

function sshsig(ns: string, alg: string, hashLen: number, reserved = ''): Buffer {
  return Buffer.from(
    new SshWriter().raw(Buffer.from('SSHSIG')).string(ns).string(reserved).string(alg).string(Buffer.alloc(hashLen, 7)).finish(),
  );
}

function userauth(method: string, extra?: Buffer, user = 'git'): Buffer {
  const key = testKey('ed25519');
  const w = new SshWriter()
    .string(createHash('sha256').update('sid').digest())
    .byte(50)
    .string(user)
    .string('ssh-connection')
    .string(method)
    .bool(true)
    .string('ssh-ed25519')
    .string(key.blob);
  if (extra !== undefined) w.string(extra);
  return Buffer.from(w.finish());
}

describe('signature purpose', () => {
  it('SSHSIG: sign:NAMESPACE for sha512 and sha256', () => {
    assert.deepEqual(signPurpose(sshsigSignedData('git', Buffer.from('m'))), { purpose: 'sign:git', user: null });
    assert.equal(signPurpose(sshsig('file', 'sha256', 32)).purpose, 'sign:file');
    assert.equal(parseSshsigSignedData(sshsig('x', 'sha512', 64, 'future'))?.namespace, 'x', 'reserved is ignored');
  });

  it('SSHSIG that is not exact is other', () => {
    const good = sshsig('git', 'sha512', 64);
    for (const bad of [
      sshsig('', 'sha512', 64),
      sshsig('g\0t', 'sha512', 64),
      sshsig('git', 'sha1', 20),
      sshsig('git', 'sha512', 63),
      sshsig('git', 'sha256', 64),
      Buffer.concat([good, Buffer.from([0])]),
      good.subarray(0, good.length - 1),
      Buffer.from('SSHSIG'),
      Buffer.from('SSHSIx'),
      Buffer.concat([Buffer.from('SSHSIG'), Buffer.from([0, 0, 0, 2, 0xff, 0xfe]), good.subarray(6 + 4 + 3)]),
    ]) {
      assert.deepEqual(signPurpose(bad), { purpose: 'other', user: null }, bad.toString('hex'));
    }
  });

  it('userauth: publickey and publickey-hostbound-v00 are login, with the user', () => {
    assert.deepEqual(signPurpose(userauth('publickey')), { purpose: 'login', user: 'git' });
    assert.deepEqual(signPurpose(userauth('publickey-hostbound-v00@openssh.com', testKey('ecdsa-256').blob, 'root')), {
      purpose: 'login',
      user: 'root',
    });
  });

  it('userauth that is not exact is other', () => {
    const good = userauth('publickey');
    for (const bad of [
      userauth('password'),
      userauth('publickey-hostbound-v00@openssh.com'), // host key missing
      userauth('publickey', Buffer.from('trailing')),
      good.subarray(0, good.length - 3),
      Buffer.concat([good, Buffer.from([1])]),
      userauth('publickey', undefined, 'a\0b'),
      Buffer.alloc(0),
      Buffer.from([0, 0, 0, 0, 50]),
    ]) {
      assert.deepEqual(signPurpose(bad), { purpose: 'other', user: null });
    }
  });

  it('never throws on any bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (a) => {
        const r = signPurpose(Buffer.from(a));
        return r.purpose === 'other' || r.purpose === 'login' || r.purpose.startsWith('sign:');
      }),
      { numRuns: 2000 },
    );
    // Mutations of valid data, too.
    const seeds = [sshsig('git', 'sha512', 64), userauth('publickey')];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 }), fc.nat(), fc.nat(255), (s, pos, v) => {
        const b = Buffer.from(seeds[s]);
        b[pos % b.length] = v;
        signPurpose(b);
        signPurpose(b.subarray(0, pos % b.length));
        return true;
      }),
      { numRuns: 2000 },
    );
  });
});
