/**
 * KeyInfo (algorithm, type, size) of a public key or certificate blob, for identities whose
 * private half the agent does not hold (smartcard keys). Throws InvalidKeyError for a blob
 * that is not an RSA, ECDSA or ed25519 key or certificate.
 */
import { InvalidKeyError } from '../errors';
import { plainAlgorithm } from '../protocol/algorithms';
import { parsePublicKeyBlob, plainKeyOf } from '../protocol/public-key';
import { mpintToUnsigned } from '../protocol/wire';
import type { KeyInfo } from './held-key';

export function publicKeyInfo(blob: Buffer): KeyInfo {
  let parsed;
  try {
    parsed = parsePublicKeyBlob(blob);
  } catch (err) {
    throw new InvalidKeyError('malformed public key', { cause: err });
  }
  const plain = plainKeyOf(parsed);
  if (plain === undefined) throw new InvalidKeyError('unsupported public key type');
  const certificate = parsed.kind === 'certificate' ? { certificate: parsed } : {};
  const type = parsed.type;
  const algorithm = plainAlgorithm(plain.type)!;
  switch (plain.kind) {
    case 'ed25519':
    case 'ecdsa':
      return { algorithm, type, publicBlob: blob, bits: algorithm.bits!, ...certificate };
    case 'rsa': {
      const n = mpintToUnsigned(plain.n);
      const bits = n.length === 0 ? 0 : (n.length - 1) * 8 + n[0].toString(2).length;
      return { algorithm, type, publicBlob: blob, bits, ...certificate };
    }
  }
}
