/**
 * A SoftHSM2 token per test: its own token directory named by a temp `SOFTHSM2_CONF`,
 * initialised with `softhsm2-util --init-token`, holding an RSA-2048 and a P-256 key made by
 * `ssh-keygen` (PKCS#8 PEM) and imported with `softhsm2-util --import`. The PINs are test
 * values; the private key files stay in the caller's temp dir.
 */
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findPeer, peerMissing } from './peers';
import type { SkipContext } from './peers';
import { cleanEnv, runOk } from './proc';

/** Where Debian's softhsm2 package puts the module (a symlink into the multiarch dir). */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface TokenKey {
  readonly label: string;
  /** "<algo> <base64> <comment>" of the key as ssh-keygen wrote it. */
  readonly publicLine: string;
  readonly fingerprint: string;
  readonly bits: number;
  readonly kind: 'RSA' | 'ECDSA';
}

export interface SoftToken {
  readonly label: string;
  readonly pin: string;
  /** SOFTHSM2_CONF for this token (give it to the agent: its helper reads it). */
  readonly env: { readonly SOFTHSM2_CONF: string };
  /** realpath of the module. */
  readonly modulePath: string;
  readonly keys: readonly TokenKey[];
}

/** softhsm2-util and the module, or skip (throw under CI) like requirePeer. */
export function requireSoftHsm(t: SkipContext): { util: string; module: string } | undefined {
  const util = findPeer('softhsm2-util');
  if (util !== undefined && existsSync(SOFTHSM_MODULE)) return { util, module: SOFTHSM_MODULE };
  return peerMissing(t, 'softhsm2', 'apt-get install -y softhsm2 opensc');
}

export interface TokenKeySpec {
  readonly name: string;
  /** ssh-keygen -t/-b arguments. */
  readonly args: readonly string[];
  /** CKA_ID, hex. */
  readonly id: string;
  readonly kind: 'RSA' | 'ECDSA';
  readonly bits: number;
}

/** The two keys: RSA-2048 and P-256. */
export const DEFAULT_TOKEN_KEYS: readonly TokenKeySpec[] = [
  { name: 'token-rsa', args: ['-t', 'rsa', '-b', '2048'], id: '01', kind: 'RSA', bits: 2048 },
  { name: 'token-ecdsa', args: ['-t', 'ecdsa', '-b', '256'], id: '02', kind: 'ECDSA', bits: 256 },
];

export async function makeSoftToken(
  dir: string,
  util: string,
  specs: readonly TokenKeySpec[] = DEFAULT_TOKEN_KEYS,
  label = 'tsagent-token',
  pin = '246810',
): Promise<SoftToken> {
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = cleanEnv({ SOFTHSM2_CONF: conf });
  await runOk(util, ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', '13579111'], { env });
  const keygen = findPeer('ssh-keygen');
  if (keygen === undefined) throw new Error('ssh-keygen is not installed');
  const keys: TokenKey[] = [];
  for (const s of specs) {
    const path = join(dir, s.name);
    await runOk(keygen, ['-q', '-N', '', '-m', 'PKCS8', '-C', s.name, ...s.args, '-f', path], { env });
    await runOk(util, ['--import', path, '--token', label, '--label', s.name, '--id', s.id, '--pin', pin], { env });
    const publicLine = (await runOk(keygen, ['-y', '-f', path], { env })).stdout.trim();
    const fp = (await runOk(keygen, ['-l', '-f', `${path}.pub`], { env })).stdout.split(' ')[1];
    keys.push({ label: s.name, publicLine, fingerprint: fp, bits: s.bits, kind: s.kind });
  }
  return { label, pin, env: { SOFTHSM2_CONF: conf }, modulePath: realpathSync(SOFTHSM_MODULE), keys };
}
