/**
 * Scanning a process's memory for private key values, the way a crash report, a swap file or
 * a memory-reading attacker would see them: `gcore` (from gdb) writes a core file of the live
 * process, and we count the places each raw private value appears in it. OpenSSL keeps
 * bignums as little-endian words, so a value is searched both big-endian and byte-reversed.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePrivateKeyFile } from '../../src/keys/key-file';
import { mpintToUnsigned } from '../../src/protocol/wire';
import { runOk } from './proc';

export interface SecretValue {
  /** e.g. `ed25519 seed`, `rsa p`. */
  readonly name: string;
  readonly bytes: Buffer;
}

/** The raw private values of an unencrypted private key file: ed25519 seed, RSA d/p/q, EC scalar. */
export function secretValuesOf(label: string, privateKeyFile: string): SecretValue[] {
  const { body } = parsePrivateKeyFile(readFileSync(privateKeyFile));
  switch (body.kind) {
    case 'ed25519':
      return [{ name: `${label} seed`, bytes: Buffer.from(body.secret.subarray(0, 32)) }];
    case 'rsa':
      return (['d', 'p', 'q'] as const).map((f) => ({ name: `${label} ${f}`, bytes: Buffer.from(mpintToUnsigned(body[f])) }));
    case 'ecdsa':
      return [{ name: `${label} scalar`, bytes: Buffer.from(mpintToUnsigned(body.d)) }];
    default:
      throw new Error(`no secret values for ${body.kind}`);
  }
}

function occurrences(haystack: Buffer, needle: Buffer): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + 1)) n++;
  return n;
}

/** Copies of a value in a memory image: big-endian plus byte-reversed (BIGNUM limbs). */
export function copiesIn(image: Buffer, value: Buffer): number {
  const reversed = Buffer.from(value).reverse();
  return occurrences(image, value) + (reversed.equals(value) ? 0 : occurrences(image, reversed));
}

/**
 * Dumps process `pid` with gcore into `dir`, counts each value's copies, deletes the dump.
 * Needs root (or ptrace rights over a non-dumpable process).
 */
export async function scanProcess(
  gcore: string,
  pid: number,
  dir: string,
  values: readonly SecretValue[],
): Promise<Map<string, number>> {
  const prefix = join(dir, 'core');
  const path = `${prefix}.${pid}`;
  try {
    await runOk(gcore, ['-o', prefix, String(pid)], { timeoutMs: 180_000 });
    const image = readFileSync(path);
    return new Map(values.map((v) => [v.name, copiesIn(image, v.bytes)]));
  } finally {
    await rm(path, { force: true });
  }
}
