import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { InvalidKeyError, UnsupportedKeyError } from '../../src/errors';
import { fingerprint } from '../../src/keys/fingerprint';
import { importPrivateKey } from '../../src/keys/import-private';
import { parsePrivateKeyFile, privateKeyBodyFromKeyObject } from '../../src/keys/key-file';
import { plainAlgorithm } from '../../src/protocol/algorithms';
import { Signer, signatureFor } from '../../src/keys/sign';
import { PublicKeyCache, SignatureVerifier, verifySignature } from '../../src/keys/verify';
import { findPeerOrFail } from '../helpers/peers';
import { certifiedKey, testKey } from '../helpers/keys';

const DATA = Buffer.from('payload');

describe('keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsagent-keys-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const fileTypes: Array<[string, string[]]> = [
    ['ed25519', ['-t', 'ed25519']],
    ['ecdsa-256', ['-t', 'ecdsa', '-b', '256']],
    ['ecdsa-384', ['-t', 'ecdsa', '-b', '384']],
    ['ecdsa-521', ['-t', 'ecdsa', '-b', '521']],
    ['rsa-2048', ['-t', 'rsa', '-b', '2048']],
    ['rsa-pem', ['-t', 'rsa', '-b', '2048', '-m', 'PEM']],
  ];

  for (const [name, args] of fileTypes) {
    it(`${name} key file from ssh-keygen: same blob, bits and fingerprints as ssh-keygen -l; signs`, () => {
      const keygen = findPeerOrFail('ssh-keygen');
      const path = join(dir, name);
      execFileSync(keygen, ['-q', '-N', '', '-C', `c-${name}`, ...args, '-f', path]);
      const { body, comment } = parsePrivateKeyFile(readFileSync(path), { filename: path });
      if (!name.endsWith('pem')) assert.equal(comment, `c-${name}`);
      const held = importPrivateKey(body);
      const pubLine = readFileSync(`${path}.pub`, 'utf8').split(' ');
      assert.equal(held.publicBlob.toString('base64'), pubLine[1]);
      for (const hash of ['sha256', 'md5'] as const) {
        const out = execFileSync(keygen, ['-l', '-E', hash, '-f', `${path}.pub`], { encoding: 'utf8' }).split(' ');
        assert.equal(fingerprint(held.publicBlob, hash), out[1]);
        assert.equal(String(held.bits), out[0]);
      }
    });
  }

  it('signatures of every type verify, and only for the signed data', async () => {
    for (const t of ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa-2048'] as const) {
      const held = importPrivateKey(testKey(t).body);
      for (const flags of [0, 2, 4]) {
        const sig = await new Signer().sign(held, DATA, flags);
        assert.ok(verifySignature(held.publicBlob, DATA, sig), `${t} flags ${flags}`);
        assert.ok(!verifySignature(held.publicBlob, Buffer.from('payloaD'), sig));
      }
    }
  });

  it('a PublicKeyCache verifies as a fresh import does, per key, within its bound', async () => {
    const cache = new PublicKeyCache(2);
    const types = ['ed25519', 'ecdsa-256', 'rsa-2048'] as const;
    for (let round = 0; round < 3; round++) {
      for (const t of types) {
        const held = importPrivateKey(testKey(t).body);
        const sig = await new Signer().sign(held, DATA, 0);
        assert.ok(verifySignature(held.publicBlob, DATA, sig, undefined, cache), `${t} round ${round}`);
        assert.ok(!verifySignature(held.publicBlob, Buffer.from('payloaD'), sig, undefined, cache));
        // Another key's blob with this signature: the cache never answers for the wrong key.
        const other = importPrivateKey(testKey(t === 'ed25519' ? 'ecdsa-256' : 'ed25519').body);
        assert.ok(!verifySignature(other.publicBlob, DATA, sig, undefined, cache));
      }
    }
  });

  it('a SignatureVerifier remembers only what verified, by every byte', async () => {
    const v = new SignatureVerifier(2);
    const held = importPrivateKey(testKey('ed25519').body);
    const sig = await new Signer().sign(held, DATA, 0);
    for (let i = 0; i < 3; i++) assert.ok(v.verify(held.publicBlob, DATA, sig));
    for (let i = 0; i < sig.length; i++) {
      const bad = Buffer.from(sig);
      bad[i] ^= 1;
      assert.ok(!v.verify(held.publicBlob, DATA, bad), `flipped byte ${i}`);
    }
    assert.ok(!v.verify(held.publicBlob, Buffer.from('payloaD'), sig));
    const other = importPrivateKey(testKey('ecdsa-256').body);
    assert.ok(!v.verify(other.publicBlob, DATA, sig));
    assert.ok(v.verify(held.publicBlob, DATA, sig), 'still verifies after the misses');
    // Moving a byte from the signature to the data: the same concatenation, never the same bind.
    assert.equal(sig[0], 0);
    assert.ok(!v.verify(held.publicBlob, Buffer.concat([DATA, Buffer.from([0])]), sig.subarray(1)));
  });

  it('RSA flag selection follows RFC 9987: 256 wins when both are set', () => {
    const rsaSignatureFor = (flags: number): { name: string } => signatureFor(plainAlgorithm('ssh-rsa')!, flags);
    assert.equal(rsaSignatureFor(0).name, 'ssh-rsa');
    assert.equal(rsaSignatureFor(1).name, 'ssh-rsa');
    assert.equal(rsaSignatureFor(2).name, 'rsa-sha2-256');
    assert.equal(rsaSignatureFor(4).name, 'rsa-sha2-512');
    assert.equal(rsaSignatureFor(6).name, 'rsa-sha2-256');
    // Keys with one algorithm ignore the flags, as OpenSSH does.
    assert.equal(signatureFor(plainAlgorithm('ssh-ed25519')!, 6).name, 'ssh-ed25519');
  });

  it('a KeyObject becomes a key body read from its PKCS#8 export: the fields JWK gives, and it signs as the original', () => {
    const made = [
      generateKeyPairSync('ed25519'),
      generateKeyPairSync('ec', { namedCurve: 'P-256' }),
      generateKeyPairSync('ec', { namedCurve: 'P-384' }),
      generateKeyPairSync('ec', { namedCurve: 'P-521' }),
      generateKeyPairSync('rsa', { modulusLength: 2048 }),
    ];
    const b64 = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url');
    const mpint = (s: string | undefined): string => {
      const m = b64(s);
      let i = 0;
      while (i < m.length - 1 && m[i] === 0) i++;
      const t = m.subarray(i);
      return ((t[0] & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), t]) : t).toString('hex');
    };
    for (const pair of made) {
      // Re-imported from DER, as test/helpers/keys.ts explains.
      const priv = createPrivateKey({
        key: pair.privateKey.export({ format: 'der', type: 'pkcs8' }),
        format: 'der',
        type: 'pkcs8',
      });
      const body = privateKeyBodyFromKeyObject(priv);
      const jwk = priv.export({ format: 'jwk' });
      if (body.kind === 'ed25519') {
        assert.equal(body.publicKey.toString('hex'), b64(jwk.x).toString('hex'));
        assert.equal(body.secret.toString('hex'), Buffer.concat([b64(jwk.d), b64(jwk.x)]).toString('hex'));
      } else if (body.kind === 'ecdsa') {
        assert.equal(body.point.toString('hex'), Buffer.concat([Buffer.from([4]), b64(jwk.x), b64(jwk.y)]).toString('hex'));
        assert.equal(body.d.toString('hex'), mpint(jwk.d));
        assert.equal(body.curve, `nistp${jwk.crv?.slice(2)}`);
      } else if (body.kind === 'rsa') {
        for (const [f, j] of [
          ['n', 'n'],
          ['e', 'e'],
          ['d', 'd'],
          ['p', 'p'],
          ['q', 'q'],
          ['iqmp', 'qi'],
        ] as const) {
          assert.equal(body[f].toString('hex'), mpint(jwk[j]), f);
        }
      } else {
        assert.fail(`unexpected body ${body.kind}`);
      }
      const held = importPrivateKey(body);
      const hash = body.kind === 'ed25519' ? null : 'sha256';
      assert.ok(verify(hash, DATA, createPublicKey(priv), sign(hash, DATA, held.privateKey)));
    }
    assert.throws(() => privateKeyBodyFromKeyObject(made[0].publicKey), InvalidKeyError);
    assert.throws(() => privateKeyBodyFromKeyObject(generateKeyPairSync('x25519').privateKey), UnsupportedKeyError);
  });

  it('refuses small RSA keys as unsupported and inconsistent keys as invalid', () => {
    assert.throws(() => importPrivateKey(testKey('rsa-768').body), UnsupportedKeyError);
    const rsa = testKey('rsa-2048').body;
    if (rsa.kind !== 'rsa') throw new Error('unexpected');
    const badQ = Buffer.from(rsa.q);
    badQ[badQ.length - 1] = badQ[badQ.length - 1] ^ 2;
    assert.throws(() => importPrivateKey({ ...rsa, q: badQ }), InvalidKeyError);
    const ec = testKey('ecdsa-256').body;
    if (ec.kind !== 'ecdsa') throw new Error('unexpected');
    assert.throws(() => importPrivateKey({ ...ec, curve: 'nistp384' }), InvalidKeyError);
    const d = Buffer.from(ec.d);
    d[d.length - 1] = d[d.length - 1] ^ 1;
    assert.throws(() => importPrivateKey({ ...ec, d }), InvalidKeyError);
  });

  it('refuses a certificate for another key', () => {
    const cert = certifiedKey(testKey('ed25519')).body;
    if (cert.kind !== 'ed25519-cert') throw new Error('unexpected');
    const fresh = importPrivateKey(cert);
    assert.equal(fresh.certificate?.keyId, 'suite');
    assert.deepEqual(fresh.certificate?.principals, ['root']);
    // Same type, different key: take the secret of a new key.
    const stranger = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
    const seed = Buffer.from(stranger.d!, 'base64url');
    const pub = Buffer.from(stranger.x!, 'base64url');
    assert.throws(() => importPrivateKey({ ...cert, publicKey: pub, secret: Buffer.concat([seed, pub]) }), InvalidKeyError);
  });
});
