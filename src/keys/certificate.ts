/**
 * OpenSSH certificate checks (PROTOCOL.certkeys) the agent needs for destination
 * constraints: the CA's signature, and whether a host certificate is valid now for a host.
 */
import { KEY_ALGORITHMS } from '../protocol/algorithms';
import type { Certificate } from '../protocol/public-key';
import { CERT_TYPE_HOST } from '../protocol/public-key';
import { SshReader } from '../protocol/wire';
import { matchPattern } from '../match';
import { verifySignature } from './verify';

/**
 * OpenSSH's SSH_ALLOWED_CA_SIGALGS (myproposal.h) without the FIDO ones: every signature
 * algorithm of the table except SHA-1 `ssh-rsa`.
 */
export const ALLOWED_CA_SIGNATURE_ALGORITHMS: readonly string[] = KEY_ALGORITHMS.flatMap((a) => a.signatures)
  .filter((s) => s.hash !== 'sha1')
  .map((s) => s.name);

/** True when the certificate carries a valid signature by its own signature key. */
export function certificateSignatureValid(cert: Certificate): boolean {
  return verifySignature(cert.signatureKey, cert.signedPart, cert.signature);
}

function signatureAlgorithm(cert: Certificate): string | undefined {
  try {
    return new SshReader(cert.signature).text();
  } catch {
    return undefined;
  }
}

/**
 * sshkey_cert_check_host(): a host certificate, valid at `nowSeconds`, with a principal list
 * in which one pattern matches `hostname`, no critical options, signed with an allowed
 * algorithm. The CA signature itself is checked separately (certificateSignatureValid).
 */
export function hostCertificateValidFor(
  cert: Certificate,
  hostname: string,
  nowSeconds = BigInt(Math.floor(Date.now() / 1000)),
): boolean {
  if (cert.certType !== CERT_TYPE_HOST) return false;
  if (nowSeconds < cert.validAfter || nowSeconds >= cert.validBefore) return false;
  if (cert.principals.length === 0) return false;
  if (!cert.principals.some((p) => matchPattern(hostname, p))) return false;
  if (cert.criticalOptions.length !== 0) return false;
  const alg = signatureAlgorithm(cert);
  return alg !== undefined && ALLOWED_CA_SIGNATURE_ALGORITHMS.includes(alg);
}
