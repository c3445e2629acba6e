/**
 * Key equality as OpenSSH's sshkey_equal(): two certificates are equal when their blobs are;
 * otherwise the public key material is compared (a certificate equals its plain key).
 */
import { CERT_SUFFIX, signatureAlgorithm } from '../protocol/algorithms';
import type { KeyKind } from '../protocol/algorithms';
import { encodePlainPublicKey, parsePublicKeyBlob, plainKeyOf } from '../protocol/public-key';
import type { PublicKey } from '../protocol/public-key';

export interface ParsedKey {
  readonly blob: Buffer;
  readonly key: PublicKey;
}

export function parsedKey(blob: Buffer): ParsedKey {
  return { blob, key: parsePublicKeyBlob(blob) };
}

export function keysEqual(a: ParsedKey, b: ParsedKey): boolean {
  if (a.key.kind === 'certificate' && b.key.kind === 'certificate') return a.blob.equals(b.blob);
  const pa = plainKeyOf(a.key);
  const pb = plainKeyOf(b.key);
  if (pa === undefined || pb === undefined) return a.blob.equals(b.blob);
  return encodePlainPublicKey(pa).equals(encodePlainPublicKey(pb));
}

/**
 * The key type class OpenSSH's sshkey_type_from_name() gives an algorithm or key type name:
 * RSA signature algorithms map to the RSA key type, all ECDSA curves to one ECDSA type.
 */
export function keyTypeClass(name: string): KeyKind | `${KeyKind}-cert` | undefined {
  // Signature algorithm names include every key type name (and rsa-sha2-*): one lookup.
  const cert = name.endsWith(CERT_SUFFIX);
  const sig = signatureAlgorithm(cert ? name.slice(0, -CERT_SUFFIX.length) : name);
  if (sig === undefined) return undefined;
  return cert ? `${sig.algorithm.kind}-cert` : sig.algorithm.kind;
}
