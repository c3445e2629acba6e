/** The three NIST curves of RFC 5656, under the names each layer uses. */
import type { EcdsaType } from '../protocol/private-key';

export interface CurveInfo {
  /** SSH curve identifier (RFC 5656 §6.1). */
  readonly sshName: 'nistp256' | 'nistp384' | 'nistp521';
  /** JWK `crv`. */
  readonly jwk: 'P-256' | 'P-384' | 'P-521';
  /** OpenSSL name for crypto.createECDH. */
  readonly openssl: 'prime256v1' | 'secp384r1' | 'secp521r1';
  /** Signature hash (RFC 5656 §6.2.1). */
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  readonly fieldBytes: number;
  readonly bits: number;
}

export const CURVES: Readonly<Record<EcdsaType, CurveInfo>> = {
  'ecdsa-sha2-nistp256': { sshName: 'nistp256', jwk: 'P-256', openssl: 'prime256v1', hash: 'sha256', fieldBytes: 32, bits: 256 },
  'ecdsa-sha2-nistp384': { sshName: 'nistp384', jwk: 'P-384', openssl: 'secp384r1', hash: 'sha384', fieldBytes: 48, bits: 384 },
  'ecdsa-sha2-nistp521': { sshName: 'nistp521', jwk: 'P-521', openssl: 'secp521r1', hash: 'sha512', fieldBytes: 66, bits: 521 },
};
