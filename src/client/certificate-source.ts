/**
 * Reading an OpenSSH certificate given either as a `-cert.pub` path or as the contents of
 * one (`<type>-cert-v01@openssh.com <base64> [comment]`), and checking which key it certifies.
 */
import { readFileSync } from 'node:fs';
import { InvalidKeyError, UsageError } from '../errors';
import { certificateBlobFromLine } from '../keys/key-file';
import { encodePlainPublicKey, parsePublicKeyBlob, plainKeyOf } from '../protocol/public-key';

const CERT_LINE = /^\s*[A-Za-z0-9@.-]+-cert-v01@openssh\.com\s+[A-Za-z0-9+/]+={0,2}(\s|$)/;

/** The certificate blob from a `-cert.pub` path or its contents. */
export function readCertificate(pathOrContents: string): Buffer {
  let text = pathOrContents;
  if (!CERT_LINE.test(text)) {
    try {
      text = readFileSync(pathOrContents, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new UsageError(`cannot read certificate file ${pathOrContents}: ${code}`, { cause: err });
    }
  }
  const line = text.split('\n').find((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (line === undefined) throw new InvalidKeyError('no certificate found');
  try {
    return Buffer.from(certificateBlobFromLine(line));
  } catch (err) {
    if (err instanceof InvalidKeyError) throw err;
    throw new InvalidKeyError('malformed certificate', { cause: err });
  }
}

/** The plain public key blob a key or certificate blob stands for (itself when plain). */
export function plainBlobOf(blob: Buffer): Buffer {
  const parsed = parsePublicKeyBlob(blob);
  const plain = plainKeyOf(parsed);
  return plain === undefined || parsed.kind !== 'certificate' ? blob : encodePlainPublicKey(plain);
}

/** Refuses a certificate that does not certify the key with public blob `keyBlob`. */
export function assertCertifies(certificate: Buffer, keyBlob: Buffer): void {
  if (!plainBlobOf(certificate).equals(plainBlobOf(keyBlob))) {
    throw new InvalidKeyError('the certificate does not certify this key');
  }
}
