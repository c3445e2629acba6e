/**
 * Golden bytes recorded from real OpenSSH 9.2 traffic (test/fixtures/README.md): every
 * request and reply decodes and re-encodes to identical bytes; and replayed into tsagent's
 * keyring, the recorded requests get the replies OpenSSH's agent gave — byte for byte where
 * the signature scheme is deterministic (ed25519, RSA PKCS#1 v1.5), verified for ECDSA.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { dispatch } from '../../src/agent/dispatcher';
import { Keyring } from '../../src/agent/keyring';
import { AgentSession } from '../../src/agent/session';
import { verifySignature } from '../../src/keys/verify';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../src/protocol/codec';
import { SshReader } from '../../src/protocol/wire';

const DIR = resolve(__dirname, '../../../test/fixtures/messages');

interface Entry {
  readonly file: string;
  readonly direction: 'request' | 'response';
  readonly type: number;
}

const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as Entry[];
const bytes = (file: string): Buffer => readFileSync(join(DIR, file));
const names = [...new Set(manifest.map((e) => e.file.replace(/^(req|resp)-/, '').replace(/\.bin$/, '')))];

describe('golden fixtures from OpenSSH 9.2', () => {
  it('the manifest lists a request and a reply for every scenario', () => {
    assert.ok(names.length >= 40, `${names.length} scenarios`);
    for (const n of names) {
      assert.ok(
        manifest.some((e) => e.file === `req-${n}.bin`),
        `req-${n}`,
      );
      assert.ok(
        manifest.some((e) => e.file === `resp-${n}.bin`),
        `resp-${n}`,
      );
    }
  });

  for (const e of manifest) {
    it(`${e.file}: decode -> encode gives the same bytes`, () => {
      const b = bytes(e.file);
      assert.equal(b[0], e.type);
      const again = e.direction === 'request' ? encodeRequest(decodeRequest(b)) : encodeResponse(decodeResponse(b));
      assert.ok(again.equals(b), `${e.file} re-encodes identically`);
    });
  }

  it('decodes to what OpenSSH meant', () => {
    const lock = decodeRequest(bytes('req-lock.bin'));
    assert.deepEqual(lock.type === 'lock' && lock.passphrase.toString(), 'fixture-lock-passphrase');
    const c = decodeRequest(bytes('req-add-constrained-rsa.bin'));
    assert.ok(c.type === 'add-identity');
    assert.deepEqual(c.constraints, [{ type: 'lifetime', seconds: 60 }, { type: 'confirm' }]);
    assert.equal(c.key.kind, 'rsa');
    const cert = decodeRequest(bytes('req-add-cert-ed25519-2.bin'));
    assert.ok(cert.type === 'add-identity' && cert.key.kind === 'ed25519-cert');
    assert.deepEqual(decodeRequest(bytes('req-remove-all-v1.bin')), { type: 'remove-all-identities', legacy: true });
    assert.deepEqual(decodeRequest(bytes('req-remove-all.bin')), { type: 'remove-all-identities', legacy: false });
    const bind = decodeRequest(bytes('req-extension-session-bind.bin'));
    assert.ok(bind.type === 'extension' && bind.name === 'session-bind@openssh.com');
    const ids = decodeResponse(bytes('resp-request-identities.bin'));
    assert.ok(ids.type === 'identities' && ids.identities.length > 5);
  });

  it('replayed into tsagent, the recorded requests get the replies OpenSSH gave', async () => {
    const keyring = new Keyring({ confirmer: async () => true });
    const session = new AgentSession({ connectionId: 1 });
    const replay = async (n: string): Promise<Buffer> =>
      encodeResponse(await dispatch(keyring, decodeRequest(bytes(`req-${n}.bin`)), session));
    for (const n of names.filter((x) => x.startsWith('add-'))) {
      assert.ok((await replay(n)).equals(bytes(`resp-${n}.bin`)), n);
    }
    let compared = 0;
    for (const n of names.filter((x) => /sign/.test(x) && !/request-identities/.test(x))) {
      const theirs = bytes(`resp-${n}.bin`);
      const ours = await replay(n);
      const req = decodeRequest(bytes(`req-${n}.bin`));
      assert.ok(req.type === 'sign');
      if (theirs[0] !== 14) {
        assert.deepEqual([...ours], [...theirs], n);
        continue;
      }
      const theirSig = decodeResponse(theirs);
      const ourSig = decodeResponse(ours);
      assert.ok(theirSig.type === 'sign-response' && ourSig.type === 'sign-response', n);
      const alg = new SshReader(theirSig.signature).text();
      if (alg.startsWith('ecdsa-')) {
        assert.equal(new SshReader(ourSig.signature).text(), alg, n);
        assert.ok(verifySignature(req.keyBlob, req.data, ourSig.signature), `${n} verifies`);
      } else {
        assert.ok(ours.equals(theirs), `${n}: same ${alg} signature bytes as OpenSSH`);
        compared++;
      }
    }
    assert.ok(compared >= 6, `${compared} deterministic signatures compared`);
    const listed = decodeResponse(await replay('request-identities'));
    const recorded = decodeResponse(bytes('resp-request-identities.bin'));
    assert.ok(listed.type === 'identities' && recorded.type === 'identities');
    for (const id of recorded.identities)
      assert.ok(listed.identities.some((x) => x.blob.equals(id.blob) && x.comment === id.comment));
    for (const n of ['remove-identity', 'failure', 'unknown-type', 'extension-unknown', 'remove-all', 'remove-all-v1']) {
      assert.ok((await replay(n)).equals(bytes(`resp-${n}.bin`)), n);
    }
    for (const n of ['lock', 'identities-locked', 'unlock-wrong', 'unlock']) {
      assert.ok((await replay(n)).equals(bytes(`resp-${n}.bin`)), n);
    }
  });
});
