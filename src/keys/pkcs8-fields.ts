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
import { KEY_ALGORITHMS } from '../protocol/algorithms';
import type { EcdsaType, PrivateKeyBody } from '../protocol/private-key';
import { magnitude, secretBuffer } from './secret-bytes';

/** One DER element: its tag and where its content lies in the buffer. */
interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const OBJECT_IDENTIFIER = 0x06;
const SEQUENCE = 0x30;

function readTlv(der: Uint8Array, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new InvalidKeyError('truncated DER');
  const tag = der[at];
  let len = der[at + 1];
  let p = at + 2;
  if (len >= 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3 || p + n > limit) throw new InvalidKeyError('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[p++];
  }
  if (p + len > limit) throw new InvalidKeyError('truncated DER');
  return { tag, start: p, end: p + len };
}

/** The elements inside a constructed element, in order. */
function childrenOf(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const t = readTlv(der, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number): Tlv {
  if (t === undefined || t.tag !== tag) throw new InvalidKeyError('unexpected DER structure');
  return t;
}

/** A copy of `t`'s content in a secret buffer (secret-bytes.ts): the DER is wiped after. */
function secretCopyOf(der: Uint8Array, t: Tlv): Buffer {
  const out = secretBuffer(t.end - t.start);
  out.set(der.subarray(t.start, t.end));
  return out;
}

/** The mpint (RFC 4251 §5) of an unsigned big-endian scalar, in a secret buffer. */
function secretMpint(unsigned: Uint8Array): Buffer {
  const m = magnitude(unsigned);
  const pad = m.length > 0 && (m[0] & 0x80) !== 0 ? 1 : 0;
  const out = secretBuffer(pad + m.length);
  out.set(m, pad);
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
function ecdsaAlgorithmOf(der: Uint8Array, params: Tlv | undefined): (typeof KEY_ALGORITHMS)[number] {
  const oid = params?.tag === OBJECT_IDENTIFIER ? der.subarray(params.start, params.end) : undefined;
  const algorithm = KEY_ALGORITHMS.find(
    (a) => a.curve !== undefined && oid !== undefined && Buffer.from(a.curve.oidDer.slice(2)).equals(oid),
  );
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
    const d = secretMpint(der.subarray(scalar.start, scalar.end));
    return { kind: 'ecdsa', type: algorithm.name as EcdsaType, curve: algorithm.curve!.sshName, point: publicBits, d };
  } finally {
    der.fill(0);
  }
}
