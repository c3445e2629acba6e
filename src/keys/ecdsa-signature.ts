/**
 * ECDSA signature bytes as SSH carries them: `mpint r, mpint s` (RFC 5656 §3.1.2), from the
 * two encodings signers produce: DER (OpenSSL's default, what tsagent's own keys sign with)
 * and IEEE P1363 r || s (what a PKCS#11 token's CKM_ECDSA returns).
 */
import { SshWriter, mpintFromUnsigned } from '../protocol/wire';
import { readTlv } from './der-reader';

/**
 * From DER `SEQUENCE { INTEGER r, INTEGER s }`, whose INTEGER contents are already mpint bytes.
 * (Asking node:crypto for r || s instead makes it build OpenSSL's legacy EC_KEY beside the
 * key, a second copy of the private scalar for the key's whole life.)
 */
export function ecdsaSignatureFromDer(der: Buffer): Buffer {
  const seq = readTlv(der, 0, der.length);
  const r = readTlv(der, seq.start, seq.end);
  const s = readTlv(der, r.end, seq.end);
  return new SshWriter(r.end - r.start + s.end - s.start + 8)
    .mpint(der.subarray(r.start, r.end))
    .mpint(der.subarray(s.start, s.end))
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
