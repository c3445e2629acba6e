/**
 * The one key-fixture helper: throwaway SSH keys and certificates for tests, fresh per run.
 *
 * - On disk, made with the real `ssh-keygen` (`generateKey`, `makeCA`, `signUserCert`...):
 *   keys go into a caller-owned (temp) directory; private key contents are never printed or
 *   logged — only paths, public lines and fingerprints are returned.
 * - In memory, made with node:crypto (`testKey`, cached per type for the process), as the
 *   agent's PrivateKeyBody; `certifiedKey` adds a certificate from a fresh CA (real ssh-keygen).
 *
 * rsa-768: `ssh-keygen` refuses RSA < 1024 bits, so that key is made with node:crypto
 * (generateKeyPairSync('rsa', { modulusLength: 768 })) and written as a traditional PKCS#1
 * PEM ("-----BEGIN RSA PRIVATE KEY-----", mode 0600), with the `.pub` line computed here.
 * NOTE: OpenSSH 9.2's key loader itself rejects RSA keys < 1024 bits, so `ssh-add` / `ssh-keygen -y`
 * refuse that file ("Invalid key length"); it exists to test tsagent's own handling of
 * undersized keys (e.g. via a Node client), not for OpenSSH to load.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicBlobOfBody } from '../../src/protocol/private-key';
import { certificateBlobFromLine, privateKeyBodyFromKeyObject, withCertificate } from '../../src/keys/key-file';
import type { PrivateKeyBody } from '../../src/protocol/private-key';
import { encodePlainPublicKey } from '../../src/protocol/public-key';
import { SshReader, mpintFromUnsigned } from '../../src/protocol/wire';
import { findPeer } from './peers';
import { cleanEnv, runOk, runSyncOk } from './proc';

export type KeyType =
  'ed25519' | 'ecdsa-256' | 'ecdsa-384' | 'ecdsa-521' | 'rsa-768' | 'rsa-1024' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

export const ALL_KEY_TYPES: readonly KeyType[] = [
  'ed25519',
  'ecdsa-256',
  'ecdsa-384',
  'ecdsa-521',
  'rsa-768',
  'rsa-1024',
  'rsa-2048',
  'rsa-3072',
  'rsa-4096',
];

export interface GeneratedKey {
  readonly type: KeyType;
  /** Private key file (OpenSSH format; PKCS#1 PEM for rsa-768), mode 0600. */
  readonly privatePath: string;
  /** `<privatePath>.pub`. */
  readonly publicPath: string;
  /** The `.pub` line without the trailing newline: "<algo> <base64> <comment>". */
  readonly publicLine: string;
  /** The public key blob (base64 field of publicLine, decoded). */
  readonly blob: Buffer;
  /** "SHA256:..." as printed by `ssh-add -l` / `ssh-keygen -l`. */
  readonly fingerprint: string;
  readonly comment: string;
  /** Passphrase the private key is encrypted with ('' = none). */
  readonly passphrase: string;
}

export interface GenerateKeyOptions {
  /** File name inside `dir` (default id_<type>_<n>). Must not exist yet. */
  name?: string;
  /** Encrypt the private key (default: none). */
  passphrase?: string;
}

let counter = 0;

function sshKeygen(): string {
  const p = findPeer('ssh-keygen');
  if (p === undefined) throw new Error('ssh-keygen is not installed (apt-get install -y openssh-client)');
  return p;
}

/** "SHA256:<unpadded base64 of sha256(blob)>". */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Parses an OpenSSH public key / certificate line into its parts. */
export function parsePublicLine(line: string): { algo: string; blob: Buffer; comment: string } {
  const m = /^(\S+)\s+([A-Za-z0-9+/=]+)(?:\s+(.*))?$/.exec(line.trim());
  if (m === null) throw new Error(`not an OpenSSH public key line: ${line.slice(0, 80)}`);
  return { algo: m[1] ?? '', blob: Buffer.from(m[2] ?? '', 'base64'), comment: m[3] ?? '' };
}

/** First line of a .pub / -cert.pub file, without the newline. */
export async function readPublicLine(path: string): Promise<string> {
  const text = await readFile(path, 'utf8');
  const line = text.split('\n').find((l) => l.trim() !== '');
  if (line === undefined) throw new Error(`empty public key file ${path}`);
  return line.trim();
}

/**
 * Fresh key pairs come out of generateKeyPairSync as DER and are re-imported, never used as
 * the KeyObjects it returns: on Node 20 a garbage collection that finalizes the generation
 * job while that same key is being exported (to JWK, as privateKeyBodyFromKeyObject once
 * did) deadlocked the process on the key's mutex (agent-key.test.js hung in some runs).
 */
const SPKI_DER = { type: 'spki', format: 'der' } as const;
const PKCS8_DER = { type: 'pkcs8', format: 'der' } as const;

interface DerPair {
  readonly publicKey: Buffer;
  readonly privateKey: Buffer;
}

function detached(pair: DerPair): { publicKey: KeyObject; privateKey: KeyObject } {
  return {
    publicKey: createPublicKey({ key: pair.publicKey, format: 'der', type: 'spki' }),
    privateKey: createPrivateKey({ key: pair.privateKey, format: 'der', type: 'pkcs8' }),
  };
}

async function generateSmallRsa(privatePath: string, bits: number, comment: string, passphrase: string): Promise<void> {
  const pair = generateKeyPairSync('rsa', { modulusLength: bits, publicKeyEncoding: SPKI_DER, privateKeyEncoding: PKCS8_DER });
  const { privateKey, publicKey } = detached(pair);
  const pem =
    passphrase === ''
      ? privateKey.export({ type: 'pkcs1', format: 'pem' })
      : privateKey.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-128-cbc', passphrase });
  await writeFile(privatePath, pem, { mode: 0o600, flag: 'wx' });
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.n === undefined || jwk.e === undefined) throw new Error('RSA JWK without n/e');
  const blob = encodePlainPublicKey({
    kind: 'rsa',
    type: 'ssh-rsa',
    e: mpintFromUnsigned(Buffer.from(jwk.e, 'base64url')),
    n: mpintFromUnsigned(Buffer.from(jwk.n, 'base64url')),
  });
  await writeFile(`${privatePath}.pub`, `ssh-rsa ${blob.toString('base64')} ${comment}\n`, { mode: 0o644, flag: 'wx' });
}

function keygenTypeArgs(type: KeyType): string[] {
  if (type === 'ed25519') return ['-t', 'ed25519'];
  const [family, bits] = type.split('-');
  if ((family !== 'ecdsa' && family !== 'rsa') || bits === undefined) throw new Error(`unknown key type ${type}`);
  return ['-t', family, '-b', bits];
}

/**
 * A fresh key pair in `dir`: `ssh-keygen -q -N '' -t T [-b B] -C comment -f path`
 * (rsa-768 via node:crypto, see the file comment).
 */
export async function generateKey(
  dir: string,
  type: KeyType,
  comment?: string,
  opts: GenerateKeyOptions = {},
): Promise<GeneratedKey> {
  counter += 1;
  const name = opts.name ?? `id_${type.replace('-', '_')}_${counter}`;
  if (name.includes('/')) throw new Error(`generateKey: name must be a plain file name: ${name}`);
  const privatePath = join(dir, name);
  const publicPath = `${privatePath}.pub`;
  const cmt = comment ?? `tsagent-test-${type}-${counter}`;
  const passphrase = opts.passphrase ?? '';
  if (existsSync(privatePath)) throw new Error(`generateKey: ${privatePath} already exists`);
  if (type === 'rsa-768') {
    await generateSmallRsa(privatePath, 768, cmt, passphrase);
  } else {
    await runOk(sshKeygen(), ['-q', '-N', passphrase, ...keygenTypeArgs(type), '-C', cmt, '-f', privatePath], {
      env: cleanEnv(),
      timeoutMs: 60_000, // rsa-4096 can take a while
    });
  }
  const publicLine = await readPublicLine(publicPath);
  const { blob } = parsePublicLine(publicLine);
  return { type, privatePath, publicPath, publicLine, blob, fingerprint: fingerprintOf(blob), comment: cmt, passphrase };
}

/** A fresh certificate authority key (ed25519 by default) in `dir`, file name `ca_<n>`. */
export async function makeCA(dir: string, type: KeyType = 'ed25519'): Promise<GeneratedKey> {
  counter += 1;
  return generateKey(dir, type, `tsagent-test-ca-${counter}`, { name: `ca_${counter}` });
}

export interface CertOptions {
  /** -n: principals (user names for user certs, host names for host certs). */
  principals: readonly string[];
  /** -I: key identity (appears in sshd's log). */
  identity: string;
  /** -V: validity interval, e.g. '+1h', '-5m:+1h', 'always:forever'. Default: ssh-keygen's (forever). */
  validity?: string;
  /** -z serial. */
  serial?: number;
  /** -O options, e.g. ['no-pty', 'force-command=/bin/true']. */
  options?: readonly string[];
}

function certPathFor(pubKeyPath: string): string {
  const base = pubKeyPath.endsWith('.pub') ? pubKeyPath.slice(0, -4) : pubKeyPath;
  return `${base}-cert.pub`;
}

/** `ssh-keygen` arguments that sign `pubKeyPath` with `caPath`. */
function certArgs(caPath: string, pubKeyPath: string, o: CertOptions, host: boolean): string[] {
  if (o.principals.length === 0) throw new Error('certificate needs at least one principal');
  const args = ['-q', '-s', caPath, '-I', o.identity];
  if (host) args.push('-h');
  args.push('-n', o.principals.join(','));
  if (o.validity !== undefined) args.push('-V', o.validity);
  if (o.serial !== undefined) args.push('-z', String(o.serial));
  for (const opt of o.options ?? []) args.push('-O', opt);
  args.push(pubKeyPath);
  return args;
}

async function sign(ca: Pick<GeneratedKey, 'privatePath'>, pubKeyPath: string, o: CertOptions, host: boolean): Promise<string> {
  await runOk(sshKeygen(), certArgs(ca.privatePath, pubKeyPath, o, host), { env: cleanEnv(), timeoutMs: 20_000 });
  const cert = certPathFor(pubKeyPath);
  if (!existsSync(cert)) throw new Error(`ssh-keygen -s did not write ${cert}`);
  return cert;
}

/** `ssh-keygen -s CA -I identity -n principals [-V validity] pub` → path of `<key>-cert.pub`. */
export function signUserCert(ca: Pick<GeneratedKey, 'privatePath'>, pubKeyPath: string, o: CertOptions): Promise<string> {
  return sign(ca, pubKeyPath, o, false);
}

/** Host certificate: as signUserCert plus `-h`. */
export function signHostCert(ca: Pick<GeneratedKey, 'privatePath'>, pubKeyPath: string, o: CertOptions): Promise<string> {
  return sign(ca, pubKeyPath, o, true);
}

// ---------------------------------------------------------------------------------------------
// in-memory keys (node:crypto), as the agent holds them

export type TestKeyType = Extract<KeyType, 'ed25519' | 'ecdsa-256' | 'ecdsa-384' | 'ecdsa-521' | 'rsa-2048' | 'rsa-768'>;

export interface TestKey {
  readonly name: TestKeyType;
  readonly body: PrivateKeyBody;
  readonly blob: Buffer;
}

function generateBody(name: TestKeyType): PrivateKeyBody {
  const body = (pair: DerPair): PrivateKeyBody => privateKeyBodyFromKeyObject(detached(pair).privateKey);
  switch (name) {
    case 'ed25519':
      return body(generateKeyPairSync('ed25519', { publicKeyEncoding: SPKI_DER, privateKeyEncoding: PKCS8_DER }));
    case 'ecdsa-256':
      return body(generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: SPKI_DER, privateKeyEncoding: PKCS8_DER }));
    case 'ecdsa-384':
      return body(generateKeyPairSync('ec', { namedCurve: 'P-384', publicKeyEncoding: SPKI_DER, privateKeyEncoding: PKCS8_DER }));
    case 'ecdsa-521':
      return body(generateKeyPairSync('ec', { namedCurve: 'P-521', publicKeyEncoding: SPKI_DER, privateKeyEncoding: PKCS8_DER }));
    case 'rsa-2048':
      return body(
        generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: SPKI_DER, privateKeyEncoding: PKCS8_DER }),
      );
    case 'rsa-768':
      return body(generateKeyPairSync('rsa', { modulusLength: 768, publicKeyEncoding: SPKI_DER, privateKeyEncoding: PKCS8_DER }));
  }
}

/** The public blob of a key body (the certificate for a certificate body), as the agent lists it. */
export function publicBlobOf(body: PrivateKeyBody): Buffer {
  return publicBlobOfBody(body);
}

const cache = new Map<TestKeyType, TestKey>();

/** A key of `name`, generated once per process and then reused. */
export function testKey(name: TestKeyType): TestKey {
  let k = cache.get(name);
  if (k === undefined) {
    const body = generateBody(name);
    k = { name, body, blob: publicBlobOf(body) };
    cache.set(name, k);
  }
  return k;
}

/** A user certificate for `key` from a fresh ed25519 CA, made by the real ssh-keygen (bounded). */
export function certifiedKey(key: TestKey, principal = 'root'): TestKey {
  const dir = mkdtempSync(join(tmpdir(), 'tsagent-cert-'));
  try {
    const ca = join(dir, 'ca');
    runSyncOk(sshKeygen(), ['-q', '-N', '', ...keygenTypeArgs('ed25519'), '-f', ca], { env: cleanEnv() });
    const pub = join(dir, 'key.pub');
    writeFileSync(pub, `${new SshReader(key.blob).text()} ${key.blob.toString('base64')} test\n`);
    runSyncOk(sshKeygen(), certArgs(ca, pub, { principals: [principal], identity: 'suite' }, false), { env: cleanEnv() });
    const cert = certificateBlobFromLine(readFileSync(certPathFor(pub), 'utf8'));
    return { name: key.name, body: withCertificate(key.body, cert), blob: cert };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
