/**
 * The key algorithm table (src/protocol/algorithms.ts): the facts other modules used to keep
 * in tables of their own, checked against the names OpenSSH uses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALLOWED_CA_SIGNATURE_ALGORITHMS } from '../../src/keys/certificate';
import { importPrivateKey } from '../../src/keys/import-private';
import { keyTypeClass } from '../../src/keys/key-equality';
import { KEY_ALGORITHMS, certifiedType, keyAlgorithm, signatureAlgorithm } from '../../src/protocol/algorithms';
import { publicBlobOfBody } from '../../src/protocol/private-key';
import { testKey } from '../helpers/keys';
import type { TestKeyType } from '../helpers/keys';

describe('key algorithm table', () => {
  it('holds every key type, its certificate type and its signature algorithms', () => {
    assert.deepEqual(
      KEY_ALGORITHMS.map((a) => a.name),
      ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'],
    );
    for (const a of KEY_ALGORITHMS) {
      assert.equal(certifiedType(a.certName), a.name);
      assert.deepEqual(keyAlgorithm(a.certName), { algorithm: a, certificate: true });
      // A plain body carries every public field, so the public blob can be built from it.
      for (const f of a.publicFields) assert.ok(a.privateFields.some((p) => p.name === f.name && p.encoding === f.encoding));
      for (const s of a.signatures) assert.equal(signatureAlgorithm(s.name)?.algorithm, a);
    }
    assert.equal(keyAlgorithm('ssh-dss'), undefined);
    assert.equal(keyAlgorithm('sk-ssh-ed25519@openssh.com'), undefined);
  });

  it('gives the CA algorithms OpenSSH allows (no SHA-1) and its key type classes', () => {
    assert.deepEqual([...ALLOWED_CA_SIGNATURE_ALGORITHMS].sort(), [
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp384',
      'ecdsa-sha2-nistp521',
      'rsa-sha2-256',
      'rsa-sha2-512',
      'ssh-ed25519',
    ]);
    assert.equal(keyTypeClass('rsa-sha2-512'), 'rsa');
    assert.equal(keyTypeClass('rsa-sha2-256-cert-v01@openssh.com'), 'rsa-cert');
    assert.equal(keyTypeClass('ecdsa-sha2-nistp384'), 'ecdsa');
    assert.equal(keyTypeClass('ssh-ed25519-cert-v01@openssh.com'), 'ed25519-cert');
    assert.equal(keyTypeClass('ssh-dss'), undefined);
  });

  it('builds the same public blob from a body as the import does', () => {
    for (const t of ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa-2048'] as TestKeyType[]) {
      const { body } = testKey(t);
      assert.deepEqual(publicBlobOfBody(body), importPrivateKey(body).publicBlob, t);
    }
  });
});
