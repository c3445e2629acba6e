/**
 * A private key the agent holds: the node:crypto KeyObject built once at add time, plus
 * what list/sign need (public blob, the key algorithm's row). The KeyObject lives in
 * OpenSSL's memory; nothing here keeps the secret in a JS buffer beyond the construction.
 */
import type { KeyObject } from 'node:crypto';
import type { KeyAlgorithm } from '../protocol/algorithms';
import type { Certificate } from '../protocol/public-key';

/** What the agent knows of a key without its private half (all it keeps while locked). */
export interface KeyInfo {
  /** The key's row in the algorithm table (its plain type for a certificate identity). */
  readonly algorithm: KeyAlgorithm;
  /** The identity's blob: the plain public key, or the certificate for a certificate identity. */
  readonly publicBlob: Buffer;
  /** Key type name as on the wire (e.g. `ssh-ed25519-cert-v01@openssh.com`). */
  readonly type: string;
  readonly bits: number;
  readonly certificate?: Certificate;
}

export interface HeldKey extends KeyInfo {
  readonly privateKey: KeyObject;
}
