/**
 * The DER encodings OpenSSL imports a private key from, written straight into one secret
 * buffer (secret-bytes.ts) that the caller wipes after createPrivateKey: PKCS#8 for ed25519
 * (RFC 8410 §7), SEC1 ECPrivateKey for ECDSA (RFC 5915 §3), PKCS#1 RSAPrivateKey for RSA
 * (RFC 8017 §A.1.2). Replaces the JWK import, which put every secret into base64 strings.
 */
import type { Curve } from '../protocol/algorithms';
import { magnitude, secretBuffer } from './secret-bytes';

/** A DER element: tag, then either raw content parts or nested elements. */
interface Element {
  readonly tag: number;
  readonly content: ReadonlyArray<Uint8Array | Element>;
}

const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const SEQUENCE = 0x30;
const CONTEXT_0 = 0xa0;

function lengthOfLength(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4;
}

function contentLength(e: Element): number {
  let n = 0;
  for (const c of e.content) n += c instanceof Uint8Array ? c.length : encodedLength(c);
  return n;
}

function encodedLength(e: Element): number {
  const n = contentLength(e);
  return 1 + lengthOfLength(n) + n;
}

function write(e: Element, out: Buffer, at: number): number {
  const n = contentLength(e);
  out[at++] = e.tag;
  if (n < 0x80) out[at++] = n;
  else {
    const bytes = lengthOfLength(n) - 1;
    out[at++] = 0x80 | bytes;
    for (let i = bytes - 1; i >= 0; i--) out[at++] = (n >> (8 * i)) & 0xff;
  }
  for (const c of e.content) {
    if (c instanceof Uint8Array) {
      out.set(c, at);
      at += c.length;
    } else {
      at = write(c, out, at);
    }
  }
  return at;
}

/** The whole element in one secret buffer. */
function encode(e: Element): Buffer {
  const out = secretBuffer(encodedLength(e));
  write(e, out, 0);
  return out;
}

const ZERO = Uint8Array.of(0);

/** A non-negative INTEGER from a big-endian magnitude (a leading 0 when the top bit is set). */
function integer(value: Uint8Array): Element {
  const m = magnitude(value);
  if (m.length === 0) return { tag: INTEGER, content: [ZERO] };
  return { tag: INTEGER, content: (m[0] & 0x80) !== 0 ? [ZERO, m] : [m] };
}

/** PKCS#8 PrivateKeyInfo for Ed25519: version 0, id-Ed25519 (1.3.101.112), the 32-byte seed. */
export function ed25519Pkcs8(seed: Uint8Array): Buffer {
  const algorithm: Element = { tag: SEQUENCE, content: [Uint8Array.of(0x06, 0x03, 0x2b, 0x65, 0x70)] };
  const curvePrivateKey: Element = { tag: OCTET_STRING, content: [seed] };
  return encode({ tag: SEQUENCE, content: [integer(ZERO), algorithm, { tag: OCTET_STRING, content: [curvePrivateKey] }] });
}

/**
 * SEC1 ECPrivateKey: version 1, the scalar left-padded to the field size, the named curve.
 * The public key is left out on purpose: OpenSSL then computes it from the scalar, and the
 * caller compares that with the point the client sent.
 */
export function ecSec1(curve: Curve, scalar: Uint8Array): Buffer {
  const padded = secretBuffer(curve.fieldBytes);
  const m = magnitude(scalar);
  padded.set(m, curve.fieldBytes - m.length);
  try {
    return encode({
      tag: SEQUENCE,
      content: [
        integer(Uint8Array.of(1)),
        { tag: OCTET_STRING, content: [padded] },
        { tag: CONTEXT_0, content: [Uint8Array.from(curve.oidDer)] },
      ],
    });
  } finally {
    padded.fill(0);
  }
}

export interface RsaPrivateValues {
  readonly n: Uint8Array;
  readonly e: Uint8Array;
  readonly d: Uint8Array;
  readonly p: Uint8Array;
  readonly q: Uint8Array;
  readonly dp: Uint8Array;
  readonly dq: Uint8Array;
  readonly qi: Uint8Array;
}

/** PKCS#1 RSAPrivateKey, two-prime (version 0). */
export function rsaPkcs1(k: RsaPrivateValues): Buffer {
  return encode({ tag: SEQUENCE, content: [integer(ZERO), ...[k.n, k.e, k.d, k.p, k.q, k.dp, k.dq, k.qi].map(integer)] });
}
