/**
 * What `ssh-add` does on its side of the wire: read a private key (file path, file contents
 * or node:crypto KeyObject), attach constraints (lifetime, confirm: RFC 9987 §5.2.1) and
 * optionally a certificate, and build the ADD_IDENTITY requests. Passphrases and key bytes
 * never appear in errors.
 */
import { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AddIdentityOptions } from '../agent/agent';
import { UsageError } from '../errors';
import { parsePrivateKeyFile, privateKeyBodyFromKeyObject, withCertificate } from '../keys/key-file';
import type { Constraint } from '../protocol/constraints';
import { publicBlobOfBody } from '../protocol/private-key';
import type { PrivateKeyBody } from '../protocol/private-key';
import { assertCertifies, readCertificate } from './certificate-source';

/** A private key: a KeyObject, a key file by path, or a key file's contents. */
export type PrivateKeySource =
  | KeyObject
  | { readonly path: string; readonly passphrase?: string | Buffer }
  | { readonly contents: string | Buffer; readonly passphrase?: string | Buffer };

export interface AddKeyOptions {
  /** Default: the key file's comment, else its path (as ssh-add), else ''. */
  readonly comment?: string;
  /** `ssh-add -t`: the agent removes the key after this many seconds (1 .. 2^32-1). */
  readonly lifetimeSeconds?: number;
  /** `ssh-add -c`: the agent asks the user before every signature. */
  readonly confirm?: boolean;
  /** A `-cert.pub` path or its contents: the certificate identity is added after the key. */
  readonly certificate?: string;
}

export interface PreparedAdd {
  readonly identity: AddIdentityOptions;
  /** The identity's public blob (the certificate for a certificate identity). */
  readonly blob: Buffer;
}

function constraintsOf(options: AddKeyOptions): Constraint[] {
  const out: Constraint[] = [];
  const life = options.lifetimeSeconds;
  if (life !== undefined) {
    if (!Number.isInteger(life) || life < 1 || life > 0xffffffff) {
      throw new UsageError('lifetimeSeconds must be an integer from 1 to 4294967295');
    }
    out.push({ type: 'lifetime', seconds: life });
  }
  if (options.confirm === true) out.push({ type: 'confirm' });
  return out;
}

async function readKey(source: PrivateKeySource): Promise<{ body: PrivateKeyBody; comment: string }> {
  if (source instanceof KeyObject) return { body: privateKeyBodyFromKeyObject(source), comment: '' };
  const opts = source.passphrase !== undefined ? { passphrase: source.passphrase } : {};
  if ('contents' in source) return parsePrivateKeyFile(source.contents, opts);
  let data: Buffer;
  try {
    data = await readFile(source.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`cannot read private key file ${source.path}: ${code}`, { cause: err });
  }
  const parsed = parsePrivateKeyFile(data, { ...opts, filename: source.path });
  return { body: parsed.body, comment: parsed.comment || source.path };
}

/** The ADD requests for a key (and its certificate identity), in the order to send them. */
export async function buildAddRequests(source: PrivateKeySource, options: AddKeyOptions = {}): Promise<PreparedAdd[]> {
  const constraints = constraintsOf(options);
  const { body, comment: fileComment } = await readKey(source);
  const comment = options.comment ?? fileComment;
  const blob = publicBlobOfBody(body);
  const out: PreparedAdd[] = [{ identity: { key: body, comment, constraints }, blob }];
  if (options.certificate !== undefined) {
    const cert = readCertificate(options.certificate);
    assertCertifies(cert, blob);
    out.push({ identity: { key: withCertificate(body, cert), comment, constraints }, blob: cert });
  }
  return out;
}
