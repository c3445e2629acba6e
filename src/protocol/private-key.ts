/**
 * Private key bodies as they travel in ADD_IDENTITY (RFC 9987 §5.2; same field order as the
 * private section of openssh-key-v1). Pure codec: no validation of the mathematics here
 * (src/keys does that); only the shape of the fields.
 */
import { ProtocolError } from '../errors';
import { SshReader, SshWriter } from './wire';

export const ED25519 = 'ssh-ed25519';
export const RSA = 'ssh-rsa';
export const ECDSA_TYPES = ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'] as const;
export type EcdsaType = (typeof ECDSA_TYPES)[number];
export type PlainKeyType = typeof ED25519 | typeof RSA | EcdsaType;

export const CERT_SUFFIX = '-cert-v01@openssh.com';
export type CertKeyType = `${PlainKeyType}${typeof CERT_SUFFIX}`;

export interface Ed25519PrivateBody {
  readonly kind: 'ed25519';
  readonly type: typeof ED25519;
  readonly publicKey: Buffer;
  /** 64 bytes: the 32-byte seed followed by the public key (as OpenSSH stores it). */
  readonly secret: Buffer;
}

export interface RsaPrivateBody {
  readonly kind: 'rsa';
  readonly type: typeof RSA;
  readonly n: Buffer;
  readonly e: Buffer;
  readonly d: Buffer;
  readonly iqmp: Buffer;
  readonly p: Buffer;
  readonly q: Buffer;
}

export interface EcdsaPrivateBody {
  readonly kind: 'ecdsa';
  readonly type: EcdsaType;
  readonly curve: string;
  /** Uncompressed point 0x04 || X || Y. */
  readonly point: Buffer;
  readonly d: Buffer;
}

export interface Ed25519CertPrivateBody {
  readonly kind: 'ed25519-cert';
  readonly type: CertKeyType;
  readonly certificate: Buffer;
  readonly publicKey: Buffer;
  readonly secret: Buffer;
}

export interface RsaCertPrivateBody {
  readonly kind: 'rsa-cert';
  readonly type: CertKeyType;
  readonly certificate: Buffer;
  readonly d: Buffer;
  readonly iqmp: Buffer;
  readonly p: Buffer;
  readonly q: Buffer;
}

export interface EcdsaCertPrivateBody {
  readonly kind: 'ecdsa-cert';
  readonly type: CertKeyType;
  readonly certificate: Buffer;
  readonly d: Buffer;
}

export type PrivateKeyBody =
  | Ed25519PrivateBody
  | RsaPrivateBody
  | EcdsaPrivateBody
  | Ed25519CertPrivateBody
  | RsaCertPrivateBody
  | EcdsaCertPrivateBody;

export function isEcdsaType(t: string): t is EcdsaType {
  return (ECDSA_TYPES as readonly string[]).includes(t);
}

/** The plain key type a certificate type certifies, or undefined if `t` is not a certificate type we know. */
export function certifiedType(t: string): PlainKeyType | undefined {
  if (!t.endsWith(CERT_SUFFIX)) return undefined;
  const base = t.slice(0, -CERT_SUFFIX.length);
  return base === ED25519 || base === RSA || isEcdsaType(base) ? base : undefined;
}

/**
 * Reads one private key body. Types whose fields we cannot hold (sk-* keys need a FIDO
 * token, DSA is gone from OpenSSH) are refused: their field layout differs, so nothing
 * after them could be trusted either.
 */
export function readPrivateKeyBody(r: SshReader): PrivateKeyBody {
  const type = r.text();
  if (type === ED25519) {
    return { kind: 'ed25519', type, publicKey: r.string(), secret: r.string() };
  }
  if (type === RSA) {
    return { kind: 'rsa', type, n: r.mpint(), e: r.mpint(), d: r.mpint(), iqmp: r.mpint(), p: r.mpint(), q: r.mpint() };
  }
  if (isEcdsaType(type)) {
    return { kind: 'ecdsa', type, curve: r.text(), point: r.string(), d: r.mpint() };
  }
  const base = certifiedType(type);
  if (base !== undefined) {
    const certType = type as CertKeyType;
    const certificate = r.string();
    if (base === ED25519) {
      return { kind: 'ed25519-cert', type: certType, certificate, publicKey: r.string(), secret: r.string() };
    }
    if (base === RSA) {
      return { kind: 'rsa-cert', type: certType, certificate, d: r.mpint(), iqmp: r.mpint(), p: r.mpint(), q: r.mpint() };
    }
    return { kind: 'ecdsa-cert', type: certType, certificate, d: r.mpint() };
  }
  throw new ProtocolError(`unsupported key type ${JSON.stringify(type.slice(0, 64))}`, undefined, r.offset);
}

export function writePrivateKeyBody(w: SshWriter, k: PrivateKeyBody): void {
  w.string(k.type);
  switch (k.kind) {
    case 'ed25519':
      w.string(k.publicKey).string(k.secret);
      return;
    case 'rsa':
      w.mpint(k.n).mpint(k.e).mpint(k.d).mpint(k.iqmp).mpint(k.p).mpint(k.q);
      return;
    case 'ecdsa':
      w.string(k.curve).string(k.point).mpint(k.d);
      return;
    case 'ed25519-cert':
      w.string(k.certificate).string(k.publicKey).string(k.secret);
      return;
    case 'rsa-cert':
      w.string(k.certificate).mpint(k.d).mpint(k.iqmp).mpint(k.p).mpint(k.q);
      return;
    case 'ecdsa-cert':
      w.string(k.certificate).mpint(k.d);
      return;
  }
}
