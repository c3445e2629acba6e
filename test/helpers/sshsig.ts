/**
 * SSHSIG (OpenSSH PROTOCOL.sshsig), the format of `ssh-keygen -Y sign` and git's SSH
 * signatures: the agent signs a wrapper of H(message); the armored blob carries the public
 * key, namespace and hash algorithm. Here to check AgentKey.sign with the real
 * `ssh-keygen -Y check-novalidate`.
 */
import { createHash } from 'node:crypto';
import { SshWriter } from '../../src/protocol/wire';

const MAGIC = Buffer.from('SSHSIG');
const HASH = 'sha512';

/** What the key signs for `message` (PROTOCOL.sshsig §"Signed Data"). */
export function sshsigSignedData(namespace: string, message: Buffer): Buffer {
  const w = new SshWriter()
    .raw(MAGIC)
    .string(namespace)
    .string('') // reserved
    .string(HASH)
    .string(createHash(HASH).update(message).digest());
  return Buffer.from(w.finish());
}

/** The armored signature file for a signature blob made by `publicKey` over sshsigSignedData. */
export function sshsigArmor(publicKey: Buffer, namespace: string, signature: Buffer): string {
  const blob = new SshWriter()
    .raw(MAGIC)
    .uint32(1) // SIG_VERSION
    .string(publicKey)
    .string(namespace)
    .string('')
    .string(HASH)
    .string(signature)
    .finish();
  const b64 = blob.toString('base64').replace(/.{1,70}/g, '$&\n');
  return `-----BEGIN SSH SIGNATURE-----\n${b64}-----END SSH SIGNATURE-----\n`;
}
