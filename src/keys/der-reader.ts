/**
 * Reading DER (X.690 §8.1): one element's tag and the span of its content, and the elements
 * inside a constructed one. Bounds are checked; nothing is copied. Shared by the PKCS#8 key
 * reader, the ECDSA signature converter and the PKCS#11 point reader.
 */
import { InvalidKeyError } from '../errors';

/** One DER element: its tag, where it begins (`head`) and where its content lies. */
export interface Tlv {
  readonly tag: number;
  readonly head: number;
  readonly start: number;
  readonly end: number;
}

export const INTEGER = 0x02;
export const BIT_STRING = 0x03;
export const OCTET_STRING = 0x04;
export const OBJECT_IDENTIFIER = 0x06;
export const SEQUENCE = 0x30;

/** The element at `at`, which must end by `limit`; lengths of up to 3 bytes (16 MiB). */
export function readTlv(der: Uint8Array, at: number, limit: number): Tlv {
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
  return { tag, head: at, start: p, end: p + len };
}

/** The elements inside a constructed element, in order. */
export function childrenOf(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const t = readTlv(der, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** `t`, when it is there and has `tag`. */
export function expectTag(t: Tlv | undefined, tag: number): Tlv {
  if (t === undefined || t.tag !== tag) throw new InvalidKeyError('unexpected DER structure');
  return t;
}
