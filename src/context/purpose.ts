/**
 * What a signature is for (POLICY.md §1 "purpose"): `login` for a publickey userauth request
 * (RFC 4252 §7, with OpenSSH's publickey-hostbound-v00@openssh.com), `sign:NAMESPACE` for
 * SSHSIG data (PROTOCOL.sshsig), else `other`. Classification can never fail a request:
 * anything that does not parse exactly is `other`.
 */
import { parseSshsigSignedData, SSHSIG_MAGIC } from '../protocol/sshsig';
import { parseUserauthRequest, SSH_MSG_USERAUTH_REQUEST } from '../protocol/userauth';
import type { Purpose } from './types';

export interface SignPurpose {
  readonly purpose: Purpose;
  /** The remote user of a login (the userauth request's user name), else null. */
  readonly user: string | null;
}

const OTHER: SignPurpose = { purpose: 'other', user: null };

function looksLikeUserauth(data: Buffer): boolean {
  // string session_id then byte 50: cheap pre-check before a full parse.
  if (data.length < 5) return false;
  const sidLen = data.readUInt32BE(0);
  return sidLen > 0 && sidLen < data.length - 4 && data[4 + sidLen] === SSH_MSG_USERAUTH_REQUEST;
}

/** Classifies the data of a sign request. Never throws. */
export function signPurpose(data: Buffer): SignPurpose {
  if (data.length >= SSHSIG_MAGIC.length && data[0] === 0x53 /* S */) {
    const sig = parseSshsigSignedData(data);
    return sig === undefined ? OTHER : { purpose: `sign:${sig.namespace}`, user: null };
  }
  if (!looksLikeUserauth(data)) return OTHER;
  try {
    return { purpose: 'login', user: parseUserauthRequest(data).user };
  } catch {
    return OTHER;
  }
}
