/**
 * Public key and certificate blobs (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4,
 * OpenSSH PROTOCOL.certkeys). Pure decode/encode of the fields; no cryptography.
 */
import { ProtocolError } from '../errors';
import { CERT_SUFFIX, ED25519, RSA, certifiedType, isEcdsaType } from './private-key';
import type { EcdsaType, PlainKeyType } from './private-key';
import { SshReader, SshWriter } from './wire';

export interface Ed25519PublicKey {
  readonly kind: 'ed25519';
  readonly type: typeof ED25519;
  readonly publicKey: Buffer;
}
export interface RsaPublicKey {
  readonly kind: 'rsa';
  readonly type: typeof RSA;
  readonly e: Buffer;
  readonly n: Buffer;
}
export interface EcdsaPublicKey {
  readonly kind: 'ecdsa';
  readonly type: EcdsaType;
  readonly curve: string;
  readonly point: Buffer;
}
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

function readPlainFields(r: SshReader, type: PlainKeyType): PlainPublicKey {
  if (type === ED25519) {
    const publicKey = r.string();
    if (publicKey.length !== 32) r.fail('ed25519 public key is not 32 bytes');
    return { kind: 'ed25519', type, publicKey };
  }
  if (type === RSA) return { kind: 'rsa', type, e: r.mpint(), n: r.mpint() };
  return { kind: 'ecdsa', type, curve: r.text(), point: r.string() };
}

/** Parses a public key or certificate blob. Trailing bytes are refused. */
export function parsePublicKeyBlob(blob: Buffer): PublicKey {
  const r = new SshReader(blob);
  const type = r.text();
  if (type === ED25519 || type === RSA || isEcdsaType(type)) {
    const key = readPlainFields(r, type);
    r.end();
    return key;
  }
  const base = certifiedType(type);
  if (base !== undefined) {
    const nonce = r.string();
    const key = readPlainFields(r, base);
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
  switch (k.kind) {
    case 'ed25519':
      w.string(k.publicKey);
      break;
    case 'rsa':
      w.mpint(k.e).mpint(k.n);
      break;
    case 'ecdsa':
      w.string(k.curve).string(k.point);
      break;
  }
  return Buffer.from(w.finish());
}

export function isCertificateType(type: string): boolean {
  return type.endsWith(CERT_SUFFIX);
}
