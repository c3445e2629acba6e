/**
 * The pure parts of PKCS#11 support: messages 20/21/26 as ssh-add writes them (OpenSSH
 * authfd.c ssh_update_card), the provider allowlist's pattern-list semantics (match.c),
 * the helper pipe's codec, and the constraints smartcard keys accept.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { ConstraintError, ProtocolError } from '../../src/errors';
import { smartcardConstraints, smartcardIdentities } from '../../src/agent/smartcard';
import type { LoadedProvider } from '../../src/agent/smartcard';
import { matchPatternList } from '../../src/match';
import { decodeHelperReply, decodeHelperRequest, encodeHelperReply, encodeHelperRequest } from '../../src/pkcs11/helper-wire';
import { DEFAULT_ALLOWED_PROVIDERS } from '../../src/pkcs11/provider-host';
import { decodeRequest, encodeRequest } from '../../src/protocol/codec';
import { MSG } from '../../src/protocol/messages';
import { encodePlainPublicKey } from '../../src/protocol/public-key';
import { SshWriter, mpintFromUnsigned } from '../../src/protocol/wire';

function body(type: number, build: (w: SshWriter) => void): Buffer {
  const w = new SshWriter();
  w.byte(type);
  build(w);
  return Buffer.from(w.finish());
}

describe('smartcard messages (20, 21, 26)', () => {
  it('decodes ADD_SMARTCARD_KEY and re-encodes it byte for byte', () => {
    const b = body(MSG.ADD_SMARTCARD_KEY, (w) => w.string('/usr/lib/x.so').string('1234'));
    const req = decodeRequest(b);
    assert.equal(req.type, 'add-smartcard-key');
    if (req.type !== 'add-smartcard-key') return;
    assert.equal(req.provider, '/usr/lib/x.so');
    assert.equal(req.pin.toString(), '1234');
    assert.deepEqual(req.constraints, []);
    assert.equal(req.constrained, false);
    assert.deepEqual(encodeRequest(req), b);
  });

  it('decodes the constrained form with lifetime and confirm', () => {
    const b = body(MSG.ADD_SMARTCARD_KEY_CONSTRAINED, (w) => w.string('/usr/lib/x.so').string('').byte(1).uint32(60).byte(2));
    const req = decodeRequest(b);
    assert.ok(req.type === 'add-smartcard-key' && req.constrained);
    assert.deepEqual(req.constraints, [{ type: 'lifetime', seconds: 60 }, { type: 'confirm' }]);
    assert.deepEqual(encodeRequest(req), b);
  });

  it('reads constraints after the PIN of 20 too, as OpenSSH does', () => {
    const req = decodeRequest(body(MSG.ADD_SMARTCARD_KEY, (w) => w.string('/p').string('1').byte(2)));
    assert.ok(req.type === 'add-smartcard-key');
    assert.deepEqual(req.constraints, [{ type: 'confirm' }]);
  });

  it('decodes REMOVE_SMARTCARD_KEY', () => {
    const b = body(MSG.REMOVE_SMARTCARD_KEY, (w) => w.string('/usr/lib/x.so').string(''));
    const req = decodeRequest(b);
    assert.deepEqual(req, { type: 'remove-smartcard-key', provider: '/usr/lib/x.so', pin: Buffer.alloc(0) });
    assert.deepEqual(encodeRequest(req), b);
  });

  it('refuses malformed bodies: unknown or duplicate constraint, short PIN, NUL in the path, trailing bytes on 21', () => {
    const bad = [
      body(MSG.ADD_SMARTCARD_KEY_CONSTRAINED, (w) => w.string('/p').string('1').byte(9)),
      body(MSG.ADD_SMARTCARD_KEY_CONSTRAINED, (w) => w.string('/p').string('1').byte(2).byte(2)),
      body(MSG.ADD_SMARTCARD_KEY, (w) => w.string('/p').uint32(5)),
      body(MSG.ADD_SMARTCARD_KEY, (w) => w.string(Buffer.from('/p\0x')).string('1')),
      body(MSG.REMOVE_SMARTCARD_KEY, (w) => w.string('/p').string('').byte(0)),
    ];
    for (const b of bad) assert.throws(() => decodeRequest(b), ProtocolError);
  });
});

describe('provider allowlist (match_pattern_list)', () => {
  it('OpenSSH default admits /usr/lib* and /usr/local/lib* only', () => {
    assert.equal(matchPatternList('/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', DEFAULT_ALLOWED_PROVIDERS), 1);
    assert.equal(matchPatternList('/usr/lib64/opensc-pkcs11.so', DEFAULT_ALLOWED_PROVIDERS), 1);
    assert.equal(matchPatternList('/usr/local/lib/libykcs11.so', DEFAULT_ALLOWED_PROVIDERS), 1);
    assert.equal(matchPatternList('/tmp/evil.so', DEFAULT_ALLOWED_PROVIDERS), 0);
    assert.equal(matchPatternList('/home/u/usr/lib/x.so', DEFAULT_ALLOWED_PROVIDERS), 0);
  });

  it('a negated pattern wins over a positive one', () => {
    assert.equal(matchPatternList('/usr/lib/bad.so', '/usr/lib/*,!/usr/lib/bad.so'), -1);
    assert.equal(matchPatternList('/usr/lib/good.so', '/usr/lib/*,!/usr/lib/bad.so'), 1);
    assert.equal(matchPatternList('/opt/x.so', '!/usr/lib/*'), 0);
  });
});

describe('provider helper pipe codec', () => {
  it('round-trips LOAD and SIGN requests and every reply', () => {
    const load = { type: 'load' as const, path: '/usr/lib/x.so', pin: Buffer.from('9999') };
    assert.deepEqual(decodeHelperRequest(encodeHelperRequest(load).subarray(4)), load);
    const sign = { type: 'sign' as const, blob: Buffer.from([1, 2]), data: Buffer.from('data'), flags: 4 };
    assert.deepEqual(decodeHelperRequest(encodeHelperRequest(sign).subarray(4)), sign);
    const replies = [
      { type: 'keys' as const, keys: [{ blob: Buffer.from([7]), label: 'k' }] },
      { type: 'signature' as const, signature: Buffer.from([9, 9]) },
      { type: 'failure' as const, reason: 'C_Login failed: CKR 0xa0' },
    ];
    for (const r of replies) assert.deepEqual(decodeHelperReply(encodeHelperReply(r).subarray(4)), r);
  });

  it('refuses unknown message types and trailing bytes', () => {
    assert.throws(() => decodeHelperRequest(Buffer.from([77])), ProtocolError);
    const frame = encodeHelperReply({ type: 'signature', signature: Buffer.from([1]) });
    assert.throws(() => decodeHelperReply(Buffer.concat([frame.subarray(4), Buffer.from([0])])), ProtocolError);
  });
});

describe('smartcard constraints and identities', () => {
  it('refuses sk-provider, accepts lifetime, confirm and associated certificates', () => {
    assert.throws(() => smartcardConstraints([{ type: 'sk-provider', provider: 'internal' }]), ConstraintError);
    const c = smartcardConstraints([{ type: 'lifetime', seconds: 5 }, { type: 'confirm' }]);
    assert.equal(c.lifetimeSeconds, 5);
    assert.equal(c.confirm, true);
    assert.throws(
      () => smartcardConstraints([{ type: 'associated-certs', certsOnly: false, certs: Buffer.from([0, 0, 0, 9]) }]),
      ConstraintError,
    );
  });

  it('labels an unlabelled key with the provider path', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = publicKey.export({ format: 'jwk' });
    const blob = encodePlainPublicKey({
      kind: 'rsa',
      type: 'ssh-rsa',
      e: mpintFromUnsigned(Buffer.from(jwk.e!, 'base64url')),
      n: mpintFromUnsigned(Buffer.from(jwk.n!, 'base64url')),
    });
    const provider: LoadedProvider = {
      path: '/usr/lib/p.so',
      keys: [{ blob, label: '' }],
      sign: () => Promise.reject(new Error('unused')),
      close: () => undefined,
      onLost: () => undefined,
    };
    const ids = smartcardIdentities(provider, smartcardConstraints([]));
    assert.deepEqual(ids, [{ blob, comment: '/usr/lib/p.so', signingBlob: blob }]);
    assert.deepEqual(smartcardIdentities(provider, { ...smartcardConstraints([]), certsOnly: true }), []);
  });
});
