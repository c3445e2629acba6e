/**
 * Private key material outside OpenSSL lives only in Buffers this module hands out and wipes:
 * off the V8 heap (an ArrayBuffer's backing store, so the garbage collector never moves or
 * copies it, and not a slice of Node's shared Buffer pool), never in a string or a BigInt
 * (neither can be wiped). The few sums an RSA import needs (p·q = n, iqmp·q mod p = 1,
 * d mod (p-1)) are done here on 16-bit limbs for the same reason. Import-time only: speed is
 * not a concern (an RSA-4096 check is a few ms), and none of it is constant-time: the data is
 * the user's own key, handed to us by the user.
 */

/** A zeroed Buffer with its own off-heap memory (not from the pool, not movable by the GC). */
export function secretBuffer(length: number): Buffer {
  return Buffer.from(new ArrayBuffer(length));
}

export function wipe(...buffers: ReadonlyArray<Uint8Array | Uint16Array | undefined>): void {
  for (const b of buffers) b?.fill(0);
}

/** Big-endian magnitude without leading zero bytes (a view). */
export function magnitude(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return b.subarray(i);
}

/** Little-endian 16-bit limbs of a big-endian magnitude, `extra` limbs of headroom. */
function toLimbs(be: Uint8Array, extra = 0): Uint16Array {
  const n = Math.ceil(be.length / 2);
  const out = new Uint16Array(new ArrayBuffer(2 * (n + extra)));
  for (let i = 0; i < be.length; i++) {
    const byteFromEnd = be.length - 1 - i;
    out[byteFromEnd >> 1] = out[byteFromEnd >> 1] | (be[i] << (8 * (byteFromEnd & 1)));
  }
  return out;
}

function topLimb(a: Uint16Array): number {
  let i = a.length - 1;
  while (i >= 0 && a[i] === 0) i--;
  return i;
}

function compareLimbs(a: Uint16Array, b: Uint16Array): number {
  const ta = topLimb(a);
  const tb = topLimb(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  for (let i = ta; i >= 0; i--) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/** a -= b, for a >= b. */
function subtractInPlace(a: Uint16Array, b: Uint16Array): void {
  let borrow = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i] - (i < b.length ? b[i] : 0) - borrow;
    borrow = v < 0 ? 1 : 0;
    a[i] = v & 0xffff;
  }
}

function multiplyLimbs(a: Uint16Array, b: Uint16Array): Uint16Array {
  const out = new Uint16Array(new ArrayBuffer(2 * (a.length + b.length)));
  for (let i = 0; i < a.length; i++) {
    let carry = 0;
    for (let j = 0; j < b.length; j++) {
      // At most 0xffff * 0xffff + 2 * 0xffff < 2^32: exact in a double.
      const v = a[i] * b[j] + out[i + j] + carry;
      out[i + j] = v & 0xffff;
      carry = Math.floor(v / 0x10000);
    }
    for (let k = i + b.length; carry !== 0; k++) {
      const v = out[k] + carry;
      out[k] = v & 0xffff;
      carry = v >>> 16;
    }
  }
  return out;
}

/** a mod m by shift-and-subtract, one bit at a time (m > 0). */
function modLimbs(a: Uint16Array, m: Uint16Array): Uint16Array {
  const r = new Uint16Array(new ArrayBuffer(2 * (m.length + 1)));
  for (let bit = a.length * 16 - 1; bit >= 0; bit--) {
    let carry = (a[bit >> 4] >> (bit & 15)) & 1;
    for (let i = 0; i < r.length; i++) {
      const v = (r[i] << 1) | carry;
      r[i] = v & 0xffff;
      carry = v >>> 16;
    }
    if (compareLimbs(r, m) >= 0) subtractInPlace(r, m);
  }
  return r;
}

function isOne(a: Uint16Array): boolean {
  return topLimb(a) === 0 && a[0] === 1;
}

/** Big-endian magnitude of limbs, into a fresh secret buffer. */
function fromLimbs(a: Uint16Array): Buffer {
  const top = topLimb(a);
  if (top < 0) return secretBuffer(0);
  const bytes = 2 * (top + 1) - (a[top] < 0x100 ? 1 : 0);
  const out = secretBuffer(bytes);
  for (let i = 0; i < bytes; i++) out[bytes - 1 - i] = (a[i >> 1] >> (8 * (i & 1))) & 0xff;
  return out;
}

/** Compares two big-endian magnitudes. */
export function compareMagnitudes(a: Uint8Array, b: Uint8Array): number {
  const ma = magnitude(a);
  const mb = magnitude(b);
  if (ma.length !== mb.length) return ma.length < mb.length ? -1 : 1;
  for (let i = 0; i < ma.length; i++) if (ma[i] !== mb[i]) return ma[i] < mb[i] ? -1 : 1;
  return 0;
}

export interface RsaSecretCheck {
  /** p · q = n. */
  readonly primesMatch: boolean;
  /** iqmp · q ≡ 1 (mod p). */
  readonly crtValid: boolean;
}

/** The consistency checks of an RSA private key; every intermediate is wiped. */
export function checkRsaSecrets(n: Uint8Array, p: Uint8Array, q: Uint8Array, iqmp: Uint8Array): RsaSecretCheck {
  const lp = toLimbs(magnitude(p));
  const lq = toLimbs(magnitude(q));
  const li = toLimbs(magnitude(iqmp));
  const ln = toLimbs(magnitude(n));
  const pq = multiplyLimbs(lp, lq);
  const iq = multiplyLimbs(li, lq);
  const r = modLimbs(iq, lp);
  try {
    return { primesMatch: compareLimbs(pq, ln) === 0, crtValid: isOne(r) };
  } finally {
    wipe(lp, lq, li, pq, iq, r);
  }
}

/** d mod (prime - 1), the CRT exponents dp and dq (prime odd, > 2), as a secret buffer. */
export function crtExponent(d: Uint8Array, prime: Uint8Array): Buffer {
  const ld = toLimbs(magnitude(d));
  const lm = toLimbs(magnitude(prime));
  lm[0] = lm[0] & 0xfffe; // an odd prime minus one: clear the low bit
  const r = modLimbs(ld, lm);
  try {
    return fromLimbs(r);
  } finally {
    wipe(ld, lm, r);
  }
}
