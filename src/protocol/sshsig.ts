/**
 * The data an agent is asked to sign for an SSHSIG signature (OpenSSH PROTOCOL.sshsig,
 * "Signed Data"): `ssh-keygen -Y sign -n NAMESPACE` and git's SSH commit signing.
 *
 *   byte[6] "SSHSIG", string namespace, string reserved, string hash_algorithm, string H(message)
 *
 * Pure; used to tell a signature's purpose (POLICY.md §1). Strict: the namespace must be
 * non-empty text without NUL, the hash algorithm sha256 or sha512 with a digest of its size,
 * nothing may follow.
 */
import { SshReader } from './wire';

export const SSHSIG_MAGIC = Buffer.from('SSHSIG', 'ascii');

const DIGEST_LENGTH: Readonly<Record<string, number>> = { sha256: 32, sha512: 64 };

export interface SshsigSignedData {
  readonly namespace: string;
  readonly hashAlgorithm: 'sha256' | 'sha512';
  readonly hash: Buffer;
}

/** The SSHSIG fields of `data`, or undefined when it is not exactly an SSHSIG signed-data blob. Never throws. */
export function parseSshsigSignedData(data: Buffer): SshsigSignedData | undefined {
  if (data.length < SSHSIG_MAGIC.length || !data.subarray(0, SSHSIG_MAGIC.length).equals(SSHSIG_MAGIC)) return undefined;
  try {
    const r = new SshReader(data.subarray(SSHSIG_MAGIC.length));
    const ns = r.string();
    r.string(); // reserved: ignored by verifiers (PROTOCOL.sshsig)
    const alg = r.text();
    const hash = r.string();
    r.end();
    if (ns.length === 0 || ns.includes(0)) return undefined;
    const namespace = ns.toString('utf8');
    // Refuse bytes that are not UTF-8: the namespace is shown and matched as text.
    if (!Buffer.from(namespace, 'utf8').equals(ns)) return undefined;
    if (alg !== 'sha256' && alg !== 'sha512') return undefined;
    if (hash.length !== DIGEST_LENGTH[alg]) return undefined;
    return { namespace, hashAlgorithm: alg, hash };
  } catch {
    return undefined;
  }
}
