/**
 * Private keys from files (OpenSSH, PEM/PKCS#1/PKCS#8, via sshpk) or node:crypto KeyObjects,
 * turned into the ADD_IDENTITY key body; and certificates attached to them. This is what
 * `ssh-add` does on its side of the wire, for the client and for tests.
 */
import sshpk from 'sshpk';
import { InvalidKeyError, UnsupportedKeyError } from '../errors';
import { certifiedType, ecdsaAlgorithmByCurve } from '../protocol/algorithms';
import type { CertKeyType, EcdsaType } from '../protocol/algorithms';
import type { PrivateKeyBody } from '../protocol/private-key';
import { parsePublicKeyBlob } from '../protocol/public-key';
import { mpintFromUnsigned } from '../protocol/wire';

export interface ParsedPrivateKey {
  readonly body: PrivateKeyBody;
  readonly comment: string;
}

/** Parses a private key file's contents. Encrypted keys need `passphrase`. */
export function parsePrivateKeyFile(
  data: string | Buffer,
  options: { passphrase?: string | Buffer; filename?: string } = {},
): ParsedPrivateKey {
  let key: sshpk.PrivateKey;
  try {
    key = sshpk.parsePrivateKey(data, 'auto', {
      filename: options.filename ?? '(key)',
      ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
    });
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    const msg =
      name === 'KeyEncryptedError' ? 'private key is encrypted: a passphrase is needed' : 'not a private key this agent can read';
    throw new InvalidKeyError(msg, { cause: name });
  }
  const part = (n: string): Buffer => {
    const p = key.parts.find((x) => x.name === n);
    if (p === undefined) throw new InvalidKeyError(`private key lacks its ${n} part`);
    return p.data;
  };
  const comment = key.comment && key.comment !== '(key)' && key.comment !== options.filename ? key.comment : '';
  switch (key.type) {
    case 'ed25519': {
      const publicKey = part('A');
      const seed = part('k');
      return {
        body: {
          kind: 'ed25519',
          type: 'ssh-ed25519',
          publicKey,
          secret: Buffer.concat([seed.subarray(seed.length - 32), publicKey]),
        },
        comment,
      };
    }
    case 'rsa':
      return {
        body: {
          kind: 'rsa',
          type: 'ssh-rsa',
          n: mpintFromUnsigned(part('n')),
          e: mpintFromUnsigned(part('e')),
          d: mpintFromUnsigned(part('d')),
          iqmp: mpintFromUnsigned(part('iqmp')),
          p: mpintFromUnsigned(part('p')),
          q: mpintFromUnsigned(part('q')),
        },
        comment,
      };
    case 'ecdsa': {
      const algorithm = ecdsaAlgorithmByCurve(part('curve').toString('latin1'));
      if (algorithm === undefined) throw new UnsupportedKeyError('unsupported ECDSA curve');
      const type = algorithm.name as EcdsaType;
      return {
        body: { kind: 'ecdsa', type, curve: algorithm.curve!.sshName, point: part('Q'), d: mpintFromUnsigned(part('d')) },
        comment,
      };
    }
    default:
      throw new UnsupportedKeyError(`unsupported key type ${key.type}`);
  }
}

/** The key body for a node:crypto private KeyObject (read from its PKCS#8 export, never via JWK strings). */
export { privateKeyBodyFromKeyObject } from './pkcs8-fields';

/** Parses the blob of a `-cert.pub` line (`type base64 comment`). */
export function certificateBlobFromLine(line: string): Buffer {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 2) throw new InvalidKeyError('not a certificate line');
  const blob = Buffer.from(fields[1], 'base64');
  const parsed = parsePublicKeyBlob(blob);
  if (parsed.kind !== 'certificate' || parsed.type !== fields[0]) throw new InvalidKeyError('not a certificate line');
  return blob;
}

/** The certificate identity's body: the key's private parts with the certificate in front. */
export function withCertificate(body: PrivateKeyBody, certificate: Buffer): PrivateKeyBody {
  const cert = parsePublicKeyBlob(certificate);
  if (cert.kind !== 'certificate') throw new InvalidKeyError('not a certificate');
  if (certifiedType(cert.type) !== body.type) throw new InvalidKeyError('certificate does not certify a key of this type');
  const type = cert.type as CertKeyType;
  switch (body.kind) {
    case 'ed25519':
      return { kind: 'ed25519-cert', type, certificate, publicKey: body.publicKey, secret: body.secret };
    case 'rsa':
      return { kind: 'rsa-cert', type, certificate, d: body.d, iqmp: body.iqmp, p: body.p, q: body.q };
    case 'ecdsa':
      return { kind: 'ecdsa-cert', type, certificate, d: body.d };
    default:
      throw new InvalidKeyError('key is already a certificate');
  }
}
