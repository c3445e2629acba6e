/**
 * The private fields of a node:crypto KeyObject, read from its PKCS#8 DER export (RFC 5208
 * §5) into Buffers the caller can wipe: ed25519 (RFC 8410 §7), ECDSA (SEC1 ECPrivateKey,
 * RFC 5915 §3) and RSA (PKCS#1 RSAPrivateKey, RFC 8017 §A.1.2). The JWK export this
 * replaces put every secret into base64url strings, which nothing can wipe. The public
 * parts (ed25519 key, EC point) come from the SubjectPublicKeyInfo export (RFC 5280 §4.1).
 */
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import { InvalidKeyError, UnsupportedKeyError } from '../errors';
import { ecdsaAlgorithmByCurveOid } from '../protocol/algorithms';
import type { KeyAlgorithm } from '../protocol/algorithms';
import type { EcdsaType, PrivateKeyBody } from '../protocol/private-key';
import { mpintFromUnsigned } from '../protocol/wire';
import {
  BIT_STRING,
  INTEGER,
  OBJECT_IDENTIFIER,
  OCTET_STRING,
  SEQUENCE,
  childrenOf,
  expectTag as expect,
  readTlv,
} from './der-reader';
import type { Tlv } from './der-reader';
import { secretBuffer } from './secret-bytes';

/** A copy of `t`'s content in a secret buffer (secret-bytes.ts): the DER is wiped after. */
function secretCopyOf(der: Uint8Array, t: Tlv): Buffer {
  const out = secretBuffer(t.end - t.start);
  out.set(der.subarray(t.start, t.end));
  return out;
}

/** PrivateKeyInfo's privateKey OCTET STRING, and the curve OID of an EC key's parameters. */
function privateKeyOf(der: Uint8Array): { key: Tlv; params: Tlv | undefined } {
  const info = childrenOf(der, expect(readTlv(der, 0, der.length), SEQUENCE));
  expect(info[0], INTEGER);
  const algorithm = childrenOf(der, expect(info[1], SEQUENCE));
  return { key: expect(info[2], OCTET_STRING), params: algorithm[1] };
}

/** The subjectPublicKey bits of a SubjectPublicKeyInfo (no unused bits in a key). */
function publicBitsOf(spki: Uint8Array): Buffer {
  const info = childrenOf(spki, expect(readTlv(spki, 0, spki.length), SEQUENCE));
  const bits = expect(info[1], BIT_STRING);
  if (bits.end - bits.start < 2 || spki[bits.start] !== 0) throw new InvalidKeyError('unexpected public key bits');
  return Buffer.from(spki.subarray(bits.start + 1, bits.end));
}

/** The ECDSA key algorithm whose curve the AlgorithmIdentifier's parameters name. */
function ecdsaAlgorithmOf(der: Uint8Array, params: Tlv | undefined): KeyAlgorithm {
  const algorithm =
    params?.tag === OBJECT_IDENTIFIER ? ecdsaAlgorithmByCurveOid(der.subarray(params.head, params.end)) : undefined;
  if (algorithm === undefined) throw new UnsupportedKeyError('unsupported curve');
  return algorithm;
}

/** The SSH private key body of `keyObject` (ed25519, RSA, ECDSA P-256/384/521). */
export function privateKeyBodyFromKeyObject(keyObject: KeyObject): PrivateKeyBody {
  if (keyObject.type !== 'private') throw new InvalidKeyError('not a private key');
  const kind = keyObject.asymmetricKeyType;
  if (kind !== 'ed25519' && kind !== 'ec' && kind !== 'rsa')
    throw new UnsupportedKeyError(`unsupported key type ${String(kind)}`);
  const der = keyObject.export({ format: 'der', type: 'pkcs8' });
  try {
    const { key, params } = privateKeyOf(der);
    if (kind === 'rsa') {
      const f = childrenOf(der, expect(readTlv(der, key.start, key.end), SEQUENCE));
      // RSAPrivateKey: version (0: two primes), n, e, d, p, q, dP, dQ, qInv. Every field is
      // checked before any is copied. A DER INTEGER's content is an SSH mpint already (two's
      // complement, minimal, RFC 4251 §5).
      const version = expect(f[0], INTEGER);
      if (version.end - version.start !== 1 || der[version.start] !== 0 || f.length !== 9) {
        throw new UnsupportedKeyError('not a two-prime RSAPrivateKey (version 0, nine fields)');
      }
      const ints = f.map((t) => expect(t, INTEGER));
      const [n, e, d, p, q, iqmp] = [1, 2, 3, 4, 5, 8].map((i) => secretCopyOf(der, ints[i]));
      return { kind: 'rsa', type: 'ssh-rsa', n, e, d, iqmp, p, q };
    }
    const publicBits = publicBitsOf(createPublicKey(keyObject).export({ format: 'der', type: 'spki' }));
    if (kind === 'ed25519') {
      const seed = expect(readTlv(der, key.start, key.end), OCTET_STRING);
      if (seed.end - seed.start !== 32 || publicBits.length !== 32) throw new InvalidKeyError('bad ed25519 key');
      const secret = secretBuffer(64);
      secret.set(der.subarray(seed.start, seed.end), 0);
      secret.set(publicBits, 32);
      return { kind: 'ed25519', type: 'ssh-ed25519', publicKey: publicBits, secret };
    }
    const algorithm = ecdsaAlgorithmOf(der, params);
    const ec = childrenOf(der, expect(readTlv(der, key.start, key.end), SEQUENCE));
    const scalar = expect(ec[1], OCTET_STRING);
    const d = mpintFromUnsigned(der.subarray(scalar.start, scalar.end), secretBuffer);
    return { kind: 'ecdsa', type: algorithm.name as EcdsaType, curve: algorithm.curve!.sshName, point: publicBits, d };
  } finally {
    der.fill(0);
  }
}
