/**
 * Every key algorithm tsagent holds, in one table: the key type name and its certificate
 * type, the key kind, the curve, the signature algorithms with their hashes and SIGN_REQUEST
 * flags, and the wire layout of the public blob and of the ADD_IDENTITY private body.
 *
 * Why here and not in keys/: the codec (private-key.ts, public-key.ts) reads and writes
 * the bodies from these layouts, and protocol/ may not import keys/. Everything here is
 * plain data with no crypto; keys/ and client/ read the same rows (hash names, curve names
 * for OpenSSL and JWK) instead of keeping tables of their own.
 *
 * Sources: RFC 4253 §6.6 and RFC 8332 (RSA), RFC 5656 §3.1, §6.1 and §6.2.1 (ECDSA),
 * RFC 8709 §4 (ed25519), RFC 9987 §5.2 and §5.6.1 (agent bodies, flags), PROTOCOL.certkeys.
 */

export type KeyKind = 'ed25519' | 'rsa' | 'ecdsa';

export const ED25519 = 'ssh-ed25519';
export const RSA = 'ssh-rsa';
export const ECDSA_TYPES = ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'] as const;
export type EcdsaType = (typeof ECDSA_TYPES)[number];
export type PlainKeyType = typeof ED25519 | typeof RSA | EcdsaType;

export const CERT_SUFFIX = '-cert-v01@openssh.com';
export type CertKeyType = `${PlainKeyType}${typeof CERT_SUFFIX}`;

/** How a field is encoded (RFC 4251 §5): `text` is a string decoded as UTF-8. */
export type FieldEncoding = 'string' | 'mpint' | 'text';

export interface WireField {
  readonly name: string;
  readonly encoding: FieldEncoding;
  /** Private key material: wiped once consumed, never logged or turned into a string. */
  readonly secret?: true;
}

/** The JS value a field decodes to. */
type FieldValue<E extends FieldEncoding> = E extends 'text' ? string : Buffer;
/** The object a field list decodes to: `{ name: value }` per field. */
export type FieldValues<F extends readonly WireField[]> = {
  readonly [K in F[number] as K['name']]: FieldValue<K['encoding']>;
};

// Field layouts, after the key type name (and, for a certificate body, after the certificate).
const ED25519_PUBLIC = [{ name: 'publicKey', encoding: 'string' }] as const;
/** `secret` is 64 bytes: the 32-byte seed followed by the public key (as OpenSSH stores it). */
const ED25519_PRIVATE = [
  { name: 'publicKey', encoding: 'string' },
  { name: 'secret', encoding: 'string', secret: true },
] as const;
const RSA_PUBLIC = [
  { name: 'e', encoding: 'mpint' },
  { name: 'n', encoding: 'mpint' },
] as const;
const RSA_CERT_PRIVATE = [
  { name: 'd', encoding: 'mpint', secret: true },
  { name: 'iqmp', encoding: 'mpint', secret: true },
  { name: 'p', encoding: 'mpint', secret: true },
  { name: 'q', encoding: 'mpint', secret: true },
] as const;
/** Note the order: n before e here, e before n in the public blob. */
const RSA_PRIVATE = [{ name: 'n', encoding: 'mpint' }, { name: 'e', encoding: 'mpint' }, ...RSA_CERT_PRIVATE] as const;
/** `point` is the uncompressed point 0x04 || X || Y. */
const ECDSA_PUBLIC = [
  { name: 'curve', encoding: 'text' },
  { name: 'point', encoding: 'string' },
] as const;
const ECDSA_CERT_PRIVATE = [{ name: 'd', encoding: 'mpint', secret: true }] as const;
const ECDSA_PRIVATE = [...ECDSA_PUBLIC, ...ECDSA_CERT_PRIVATE] as const;

export type Ed25519PublicFields = FieldValues<typeof ED25519_PUBLIC>;
export type Ed25519PrivateFields = FieldValues<typeof ED25519_PRIVATE>;
export type RsaPublicFields = FieldValues<typeof RSA_PUBLIC>;
export type RsaPrivateFields = FieldValues<typeof RSA_PRIVATE>;
export type RsaCertPrivateFields = FieldValues<typeof RSA_CERT_PRIVATE>;
export type EcdsaPublicFields = FieldValues<typeof ECDSA_PUBLIC>;
export type EcdsaPrivateFields = FieldValues<typeof ECDSA_PRIVATE>;
export type EcdsaCertPrivateFields = FieldValues<typeof ECDSA_CERT_PRIVATE>;

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface SignatureAlgorithm {
  /** The name in the signature blob. */
  readonly name: string;
  /** Digest for node:crypto sign/verify; null: the algorithm hashes internally (ed25519). */
  readonly hash: HashName | null;
  /** SIGN_REQUEST flag that selects it (RFC 9987 §5.6.1); 0 for the default. */
  readonly flag: number;
}

export interface Curve {
  /** SSH curve identifier (RFC 5656 §6.1). */
  readonly sshName: 'nistp256' | 'nistp384' | 'nistp521';
  /** JWK `crv` (RFC 7518 §6.2.1.1). */
  readonly jwk: 'P-256' | 'P-384' | 'P-521';
  /** OpenSSL's curve name. */
  readonly openssl: 'prime256v1' | 'secp384r1' | 'secp521r1';
  /** The curve's OBJECT IDENTIFIER, DER-encoded with tag and length (RFC 5480 §2.1.1.1). */
  readonly oidDer: readonly number[];
  readonly fieldBytes: number;
  readonly bits: number;
}

export interface KeyAlgorithm {
  readonly name: PlainKeyType;
  readonly kind: KeyKind;
  /** The OpenSSH certificate type for this key type. */
  readonly certName: CertKeyType;
  /** ECDSA only. */
  readonly curve?: Curve;
  /** Key size in bits; undefined when it varies (RSA: read it from the modulus). */
  readonly bits: number | undefined;
  /** Signature algorithms this key signs with; the first is the one used with no flag. */
  readonly signatures: readonly SignatureAlgorithm[];
  /** Public blob fields after the type name. */
  readonly publicFields: readonly WireField[];
  /** ADD_IDENTITY body fields after the type name. */
  readonly privateFields: readonly WireField[];
  /** Certificate ADD_IDENTITY body fields after the certificate blob. */
  readonly certPrivateFields: readonly WireField[];
}

// SIGN_FLAG values (messages.ts), repeated as literals to keep this table free of imports.
const RSA_SHA2_256_FLAG = 2;
const RSA_SHA2_512_FLAG = 4;

function ecdsa(bits: 256 | 384 | 521, openssl: Curve['openssl'], oid: readonly number[], hash: HashName): KeyAlgorithm {
  const sshName = `nistp${bits}` as const;
  const name = `ecdsa-sha2-${sshName}` as const;
  return {
    name,
    kind: 'ecdsa',
    certName: `${name}${CERT_SUFFIX}`,
    curve: { sshName, jwk: `P-${bits}`, openssl, oidDer: [0x06, oid.length, ...oid], fieldBytes: Math.ceil(bits / 8), bits },
    bits,
    signatures: [{ name, hash, flag: 0 }],
    publicFields: ECDSA_PUBLIC,
    privateFields: ECDSA_PRIVATE,
    certPrivateFields: ECDSA_CERT_PRIVATE,
  };
}

/** The table. Order is the order ssh-keygen documents them; nothing depends on it. */
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = [
  {
    name: ED25519,
    kind: 'ed25519',
    certName: `${ED25519}${CERT_SUFFIX}`,
    bits: 256,
    signatures: [{ name: ED25519, hash: null, flag: 0 }],
    publicFields: ED25519_PUBLIC,
    privateFields: ED25519_PRIVATE,
    certPrivateFields: ED25519_PRIVATE,
  },
  // RFC 9987 §5.6.1 / OpenSSH: flag 2 selects rsa-sha2-256, flag 4 rsa-sha2-512, 256 winning
  // when both are set (signatureFor tries them in this order); no flag means SHA-1 `ssh-rsa`.
  {
    name: RSA,
    kind: 'rsa',
    certName: `${RSA}${CERT_SUFFIX}`,
    bits: undefined,
    signatures: [
      { name: 'ssh-rsa', hash: 'sha1', flag: 0 },
      { name: 'rsa-sha2-256', hash: 'sha256', flag: RSA_SHA2_256_FLAG },
      { name: 'rsa-sha2-512', hash: 'sha512', flag: RSA_SHA2_512_FLAG },
    ],
    publicFields: RSA_PUBLIC,
    privateFields: RSA_PRIVATE,
    certPrivateFields: RSA_CERT_PRIVATE,
  },
  ecdsa(256, 'prime256v1', [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07], 'sha256'),
  ecdsa(384, 'secp384r1', [0x2b, 0x81, 0x04, 0x00, 0x22], 'sha384'),
  ecdsa(521, 'secp521r1', [0x2b, 0x81, 0x04, 0x00, 0x23], 'sha512'),
];

const BY_NAME: ReadonlyMap<string, KeyAlgorithm> = new Map(KEY_ALGORITHMS.map((a) => [a.name, a]));
const BY_CERT_NAME: ReadonlyMap<string, KeyAlgorithm> = new Map(KEY_ALGORITHMS.map((a) => [a.certName, a]));
const BY_SIGNATURE: ReadonlyMap<string, { readonly algorithm: KeyAlgorithm; readonly signature: SignatureAlgorithm }> = new Map(
  KEY_ALGORITHMS.flatMap((algorithm) =>
    algorithm.signatures.map((signature) => [signature.name, { algorithm, signature }] as const),
  ),
);

/** The row for a plain key type name. */
export function plainAlgorithm(type: string): KeyAlgorithm | undefined {
  return BY_NAME.get(type);
}

/** The row for a key or certificate type name, and whether it is the certificate type. */
export function keyAlgorithm(type: string): { readonly algorithm: KeyAlgorithm; readonly certificate: boolean } | undefined {
  const plain = BY_NAME.get(type);
  if (plain !== undefined) return { algorithm: plain, certificate: false };
  const cert = BY_CERT_NAME.get(type);
  return cert === undefined ? undefined : { algorithm: cert, certificate: true };
}

/** The row and signature entry for a signature algorithm name (`rsa-sha2-256`, `ssh-ed25519`…). */
export function signatureAlgorithm(
  name: string,
): { readonly algorithm: KeyAlgorithm; readonly signature: SignatureAlgorithm } | undefined {
  return BY_SIGNATURE.get(name);
}

/**
 * The signature algorithm a SIGN_REQUEST's flags select for a key (RFC 9987 §5.6.1): for
 * RSA, rsa-sha2-256 when its flag is set, else rsa-sha2-512 when its flag is, else ssh-rsa;
 * other keys have one algorithm and ignore the flags, as OpenSSH does.
 */
export function signatureFor(algorithm: KeyAlgorithm, flags: number): SignatureAlgorithm {
  const sigs = algorithm.signatures;
  for (let i = 1; i < sigs.length; i++) if ((flags & sigs[i].flag) !== 0) return sigs[i];
  return sigs[0];
}

/** The ECDSA row for an SSH curve name (`nistp256`…). */
export function ecdsaAlgorithmByCurve(sshName: string): KeyAlgorithm | undefined {
  return KEY_ALGORITHMS.find((a) => a.curve?.sshName === sshName);
}

/** The ECDSA row whose named curve is `oidDer`, the OID's DER with tag and length (RFC 5480 §2.1.1.1). */
export function ecdsaAlgorithmByCurveOid(oidDer: Uint8Array): KeyAlgorithm | undefined {
  return KEY_ALGORITHMS.find(
    (a) => a.curve !== undefined && a.curve.oidDer.length === oidDer.length && a.curve.oidDer.every((b, i) => b === oidDer[i]),
  );
}

export function isEcdsaType(t: string): t is EcdsaType {
  return (ECDSA_TYPES as readonly string[]).includes(t);
}

/** The plain key type a certificate type certifies, or undefined if `t` is not a certificate type we know. */
export function certifiedType(t: string): PlainKeyType | undefined {
  return BY_CERT_NAME.get(t)?.name;
}

export function isCertificateType(type: string): boolean {
  return type.endsWith(CERT_SUFFIX);
}
