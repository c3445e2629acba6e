/**
 * Key equality as OpenSSH's sshkey_equal(): two certificates are equal when their blobs are;
 * otherwise the public key material is compared (a certificate equals its plain key).
 */
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
export function keyTypeClass(name: string): string | undefined {
  const cert = name.endsWith('-cert-v01@openssh.com');
  const base = cert ? name.slice(0, -'-cert-v01@openssh.com'.length) : name;
  let cls: string | undefined;
  if (base === 'ssh-ed25519') cls = 'ed25519';
  else if (base === 'ssh-rsa' || base === 'rsa-sha2-256' || base === 'rsa-sha2-512') cls = 'rsa';
  else if (/^ecdsa-sha2-nistp(256|384|521)$/.test(base)) cls = 'ecdsa';
  return cls === undefined ? undefined : cert ? `${cls}-cert` : cls;
}
