/**
 * Public key and certificate blobs (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4,
 * OpenSSH PROTOCOL.certkeys). Pure decode/encode of the fields, laid out by the key
 * algorithm table (algorithms.ts); no cryptography.
 */
import { ProtocolError } from '../errors';
import { keyAlgorithm } from './algorithms';
import type { EcdsaPublicFields, EcdsaType, Ed25519PublicFields, KeyAlgorithm, RsaPublicFields } from './algorithms';
import { readFields, writeFields } from './fields';
import { SshReader, SshWriter } from './wire';

export type Ed25519PublicKey = { readonly kind: 'ed25519'; readonly type: 'ssh-ed25519' } & Ed25519PublicFields;
export type RsaPublicKey = { readonly kind: 'rsa'; readonly type: 'ssh-rsa' } & RsaPublicFields;
export type EcdsaPublicKey = { readonly kind: 'ecdsa'; readonly type: EcdsaType } & EcdsaPublicFields;
export type PlainPublicKey = Ed25519PublicKey | RsaPublicKey | EcdsaPublicKey;

export const CERT_TYPE_USER = 1;
export const CERT_TYPE_HOST = 2;

export interface Certificate {
  readonly kind: 'certificate';
  readonly type: string;
  readonly nonce: Buffer;
  /** The certified key (its public fields, re-labelled with the plain type). */
  readonly key: PlainPublicKey;
  readonly serial: bigint;
  readonly certType: number;
  readonly keyId: string;
  readonly principals: readonly string[];
  readonly validAfter: bigint;
  readonly validBefore: bigint;
  readonly criticalOptions: Buffer;
  readonly extensions: Buffer;
  readonly reserved: Buffer;
  readonly signatureKey: Buffer;
  readonly signature: Buffer;
  /** Everything the CA signed: the blob up to (not including) the signature field. */
  readonly signedPart: Buffer;
}

/** A key type tsagent does not interpret (sk-*, DSA, future types): kept as its blob. */
export interface OtherPublicKey {
  readonly kind: 'other';
  readonly type: string;
}

export type PublicKey = PlainPublicKey | Certificate | OtherPublicKey;

/** RFC 8709 §4: an ed25519 public key is exactly 32 bytes. */
const ED25519_PUBLIC_BYTES = 32;

function readPlainFields(r: SshReader, algorithm: KeyAlgorithm): PlainPublicKey {
  const fields = readFields(r, algorithm.publicFields);
  if (algorithm.kind === 'ed25519' && (fields['publicKey'] as Buffer).length !== ED25519_PUBLIC_BYTES) {
    r.fail('ed25519 public key is not 32 bytes');
  }
  // The layout and the key type are the same row of the table: the cast restates that.
  return { kind: algorithm.kind, type: algorithm.name, ...fields } as unknown as PlainPublicKey;
}

/** Parses a public key or certificate blob. Trailing bytes are refused. */
export function parsePublicKeyBlob(blob: Buffer): PublicKey {
  const r = new SshReader(blob);
  const type = r.text();
  const found = keyAlgorithm(type);
  if (found !== undefined && !found.certificate) {
    const key = readPlainFields(r, found.algorithm);
    r.end();
    return key;
  }
  if (found !== undefined) {
    const nonce = r.string();
    const key = readPlainFields(r, found.algorithm);
    const serial = r.uint64();
    const certType = r.uint32();
    const keyId = r.text();
    const principalsBlob = r.string();
    const validAfter = r.uint64();
    const validBefore = r.uint64();
    const criticalOptions = r.string();
    const extensions = r.string();
    const reserved = r.string();
    const signatureKey = r.string();
    const signedEnd = r.offset;
    const signature = r.string();
    r.end();
    const principals: string[] = [];
    const pr = new SshReader(principalsBlob);
    while (!pr.atEnd) principals.push(pr.text());
    return {
      kind: 'certificate',
      type,
      nonce,
      key,
      serial,
      certType,
      keyId,
      principals,
      validAfter,
      validBefore,
      criticalOptions,
      extensions,
      reserved,
      signatureKey,
      signature,
      signedPart: blob.subarray(0, signedEnd),
    };
  }
  if (type.length === 0) throw new ProtocolError('empty key type');
  return { kind: 'other', type };
}

/** The plain key a blob is or certifies; undefined for key types we do not interpret. */
export function plainKeyOf(key: PublicKey): PlainPublicKey | undefined {
  if (key.kind === 'certificate') return key.key;
  if (key.kind === 'other') return undefined;
  return key;
}

export function encodePlainPublicKey(k: PlainPublicKey): Buffer {
  const w = new SshWriter(64 + (k.kind === 'rsa' ? k.n.length : 0));
  w.string(k.type);
  writeFields(w, keyAlgorithm(k.type)!.algorithm.publicFields, k);
  return Buffer.from(w.finish());
}

export { isCertificateType } from './algorithms';
