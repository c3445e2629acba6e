/**
 * ECDSA signature bytes as SSH carries them: `mpint r, mpint s` (RFC 5656 §3.1.2), from the
 * two encodings signers produce: DER (OpenSSL's default, what tsagent's own keys sign with)
 * and IEEE P1363 r || s (what a PKCS#11 token's CKM_ECDSA returns).
 */
import { SshWriter, mpintFromUnsigned } from '../protocol/wire';

/** A DER length at `at` (short or long form): [length, offset of the content]. */
function derLength(der: Buffer, at: number): [number, number] {
  const first = der[at];
  if (first < 0x80) return [first, at + 1];
  let len = 0;
  for (let i = 1; i <= (first & 0x7f); i++) len = (len << 8) | der[at + i];
  return [len, at + 1 + (first & 0x7f)];
}

/**
 * From DER `SEQUENCE { INTEGER r, INTEGER s }`, whose INTEGER contents are already mpint bytes.
 * (Asking node:crypto for r || s instead makes it build OpenSSL's legacy EC_KEY beside the
 * key, a second copy of the private scalar for the key's whole life.)
 */
export function ecdsaSignatureFromDer(der: Buffer): Buffer {
  const [, seq] = derLength(der, 1);
  const [rLen, rAt] = derLength(der, seq + 1);
  const [sLen, sAt] = derLength(der, rAt + rLen + 1);
  return new SshWriter(rLen + sLen + 8)
    .mpint(der.subarray(rAt, rAt + rLen))
    .mpint(der.subarray(sAt, sAt + sLen))
    .finish();
}

/** From P1363 r || s: two unsigned big-endian halves of equal, fixed width. */
export function ecdsaSignatureFromP1363(p1363: Buffer): Buffer {
  const half = p1363.length / 2;
  return new SshWriter(p1363.length + 16)
    .mpint(mpintFromUnsigned(p1363.subarray(0, half)))
    .mpint(mpintFromUnsigned(p1363.subarray(half)))
    .finish();
}
