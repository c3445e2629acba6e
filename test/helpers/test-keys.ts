/**
 * Throwaway keys for the shared suite, generated fresh per run with node:crypto, and
 * certificates for them signed by a fresh CA with the real `ssh-keygen -s`.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateBlobFromLine, privateKeyBodyFromKeyObject, withCertificate } from '../../src/keys/key-file';
import { publicBlobOfBody } from '../../src/protocol/private-key';
import type { PrivateKeyBody } from '../../src/protocol/private-key';

export type TestKeyType = 'ed25519' | 'ecdsa-256' | 'ecdsa-384' | 'ecdsa-521' | 'rsa-2048' | 'rsa-768';

export interface TestKey {
  readonly name: TestKeyType;
  readonly body: PrivateKeyBody;
  readonly blob: Buffer;
}

function generate(name: TestKeyType): PrivateKeyBody {
  switch (name) {
    case 'ed25519':
      return privateKeyBodyFromKeyObject(generateKeyPairSync('ed25519').privateKey);
    case 'ecdsa-256':
      return privateKeyBodyFromKeyObject(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    case 'ecdsa-384':
      return privateKeyBodyFromKeyObject(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey);
    case 'ecdsa-521':
      return privateKeyBodyFromKeyObject(generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey);
    case 'rsa-2048':
      return privateKeyBodyFromKeyObject(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    case 'rsa-768':
      return privateKeyBodyFromKeyObject(generateKeyPairSync('rsa', { modulusLength: 768 }).privateKey);
  }
}

/** The public blob of a key body, computed the way the agent does. */
export const publicBlobOf = publicBlobOfBody;

const cache = new Map<TestKeyType, TestKey>();

export function testKey(name: TestKeyType): TestKey {
  let k = cache.get(name);
  if (k === undefined) {
    const body = generate(name);
    k = { name, body, blob: publicBlobOf(body) };
    cache.set(name, k);
  }
  return k;
}

/** A user certificate for `key` from a fresh CA, made by the real ssh-keygen. */
export function certifiedKey(key: TestKey, principal = 'root'): TestKey {
  const dir = mkdtempSync(join(tmpdir(), 'tsagent-cert-'));
  try {
    const ca = join(dir, 'ca');
    execFileSync('ssh-keygen', ['-q', '-N', '', '-t', 'ed25519', '-f', ca], { stdio: 'ignore' });
    const pub = join(dir, 'key.pub');
    const type = key.blob.subarray(4, 4 + key.blob.readUInt32BE(0)).toString();
    writeFileSync(pub, `${type} ${key.blob.toString('base64')} test\n`);
    execFileSync('ssh-keygen', ['-q', '-s', ca, '-I', 'suite', '-n', principal, pub], { stdio: 'ignore' });
    const cert = certificateBlobFromLine(readFileSync(join(dir, 'key-cert.pub'), 'utf8'));
    const body = withCertificate(key.body, cert);
    return { name: key.name, body, blob: cert };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
