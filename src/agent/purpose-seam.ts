/**
 * SEAM, to be replaced by src/context/purpose.ts (issue 12, POLICY.md §1): what the data of a
 * sign request is for. Until then: "login" when it parses as a publickey userauth request
 * (RFC 4252 §7, both publickey forms), else "other" — SSHSIG (`sign:NAMESPACE`) is not told
 * apart yet. Only the gate calls it, and only when a port (policy, approvals, audit) needs it.
 */
import type { Purpose } from '../context/types';
import { parseUserauthRequest } from '../protocol/userauth';

export interface SignedDataFacts {
  readonly purpose: Purpose;
  /** The remote user of a login, else null. */
  readonly user: string | null;
}

const OTHER: SignedDataFacts = Object.freeze({ purpose: 'other', user: null });

/** Never throws: data that does not parse is `other`. */
export function signedDataFacts(data: Buffer): SignedDataFacts {
  try {
    return { purpose: 'login', user: parseUserauthRequest(data).user };
  } catch {
    return OTHER;
  }
}
