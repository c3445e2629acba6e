/**
 * Private key bodies as they travel in ADD_IDENTITY (RFC 9987 §5.2; same field order as the
 * private section of openssh-key-v1). Pure codec, driven by the field layouts of the key
 * algorithm table (algorithms.ts): no validation of the mathematics here (src/keys does
 * that); only the shape of the fields.
 */
import { ProtocolError } from '../errors';
import { keyAlgorithm } from './algorithms';
import type {
  CertKeyType,
  EcdsaCertPrivateFields,
  EcdsaPrivateFields,
  EcdsaType,
  Ed25519PrivateFields,
  KeyAlgorithm,
  RsaCertPrivateFields,
  RsaPrivateFields,
  WireField,
} from './algorithms';
import { readFields, writeFields } from './fields';
import { SshReader, SshWriter } from './wire';

export { CERT_SUFFIX, ECDSA_TYPES, ED25519, RSA, certifiedType, isEcdsaType } from './algorithms';
export type { CertKeyType, EcdsaType, PlainKeyType } from './algorithms';

export type Ed25519PrivateBody = { readonly kind: 'ed25519'; readonly type: 'ssh-ed25519' } & Ed25519PrivateFields;
export type RsaPrivateBody = { readonly kind: 'rsa'; readonly type: 'ssh-rsa' } & RsaPrivateFields;
export type EcdsaPrivateBody = { readonly kind: 'ecdsa'; readonly type: EcdsaType } & EcdsaPrivateFields;

interface CertBody {
  readonly type: CertKeyType;
  /** The certificate blob (PROTOCOL.certkeys), which is also the identity's public blob. */
  readonly certificate: Buffer;
}
export type Ed25519CertPrivateBody = { readonly kind: 'ed25519-cert' } & CertBody & Ed25519PrivateFields;
export type RsaCertPrivateBody = { readonly kind: 'rsa-cert' } & CertBody & RsaCertPrivateFields;
export type EcdsaCertPrivateBody = { readonly kind: 'ecdsa-cert' } & CertBody & EcdsaCertPrivateFields;

export type PrivateKeyBody =
  Ed25519PrivateBody | RsaPrivateBody | EcdsaPrivateBody | Ed25519CertPrivateBody | RsaCertPrivateBody | EcdsaCertPrivateBody;

/** The table row and layout for a body. */
function layoutOf(body: PrivateKeyBody): { algorithm: KeyAlgorithm; fields: readonly WireField[] } {
  const found = keyAlgorithm(body.type);
  if (found === undefined) throw new ProtocolError(`unsupported key type ${JSON.stringify(body.type.slice(0, 64))}`);
  return {
    algorithm: found.algorithm,
    fields: found.certificate ? found.algorithm.certPrivateFields : found.algorithm.privateFields,
  };
}

/**
 * Reads one private key body. Types whose fields we cannot hold (sk-* keys need a FIDO
 * token, DSA is gone from OpenSSH) are refused: their field layout differs, so nothing
 * after them could be trusted either.
 */
export function readPrivateKeyBody(r: SshReader): PrivateKeyBody {
  const type = r.text();
  const found = keyAlgorithm(type);
  if (found === undefined)
    throw new ProtocolError(`unsupported key type ${JSON.stringify(type.slice(0, 64))}`, undefined, r.offset);
  const { algorithm, certificate } = found;
  if (!certificate) {
    // The layout and the body type are the same row of the table: the cast restates that.
    return { kind: algorithm.kind, type, ...readFields(r, algorithm.privateFields) } as unknown as PrivateKeyBody;
  }
  const cert = r.string();
  return {
    kind: `${algorithm.kind}-cert`,
    type,
    certificate: cert,
    ...readFields(r, algorithm.certPrivateFields),
  } as unknown as PrivateKeyBody;
}

export function writePrivateKeyBody(w: SshWriter, k: PrivateKeyBody): void {
  w.string(k.type);
  if ('certificate' in k) w.string(k.certificate);
  writeFields(w, layoutOf(k).fields, k);
}

/**
 * The public blob of the identity a key body creates: the plain public key (its public
 * fields in the blob's order, RFC 4253 §6.6), or the certificate for a certificate body.
 */
export function publicBlobOfBody(body: PrivateKeyBody): Buffer {
  if ('certificate' in body) return Buffer.from(body.certificate);
  const { algorithm } = layoutOf(body);
  const w = new SshWriter(64 + ('n' in body ? body.n.length : 0));
  w.string(body.type);
  writeFields(w, algorithm.publicFields, body);
  return Buffer.from(w.finish());
}

/** The secret fields of a body (views: filling them wipes the buffer they were read from). */
export function secretFieldsOf(body: PrivateKeyBody): Buffer[] {
  const v = body as unknown as Readonly<Record<string, Buffer | string>>;
  return layoutOf(body)
    .fields.filter((f) => f.secret === true)
    .map((f) => v[f.name] as Buffer);
}
