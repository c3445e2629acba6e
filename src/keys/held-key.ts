/**
 * A private key the agent holds: the node:crypto KeyObject built once at add time, plus
 * what list/sign need (public blob, algorithm family). The KeyObject lives in OpenSSL's
 * memory; nothing here keeps the secret in a JS buffer beyond the construction.
 */
import type { KeyObject } from 'node:crypto';
import type { Certificate } from '../protocol/public-key';
import type { CurveInfo } from './curves';

export type KeyFamily = 'ed25519' | 'rsa' | 'ecdsa';

/** What the agent knows of a key without its private half (all it keeps while locked). */
export interface KeyInfo {
  readonly family: KeyFamily;
  /** The identity's blob: the plain public key, or the certificate for a certificate identity. */
  readonly publicBlob: Buffer;
  /** Key type name as on the wire (e.g. `ssh-ed25519-cert-v01@openssh.com`). */
  readonly type: string;
  readonly bits: number;
  readonly curve?: CurveInfo;
  readonly certificate?: Certificate;
}

export interface HeldKey extends KeyInfo {
  readonly privateKey: KeyObject;
}
