/**
 * The bench keys: generated once per run with node:crypto, added to both agents over the
 * protocol (the same ADD bodies, so both agents hold byte-identical identities).
 */
import { generateKeyPair, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { AgentClient } from '../src/client/agent-client';
import { privateKeyBodyFromKeyObject } from '../src/keys/key-file';
import type { Identity } from '../src/protocol/messages';
import type { PrivateKeyBody } from '../src/protocol/private-key';

export type KeyKind = 'ed25519' | 'ecdsa-p256' | 'rsa-2048' | 'rsa-4096';
export const KEY_KINDS: readonly KeyKind[] = ['ed25519', 'ecdsa-p256', 'rsa-2048', 'rsa-4096'];

export interface BenchKey {
  readonly kind: KeyKind;
  readonly privateKey: KeyObject;
  readonly body: PrivateKeyBody;
  readonly comment: string;
  /** node:crypto's digest for the signature the bench asks for (RSA: flags 4 = rsa-sha2-512). */
  readonly hash: string | null;
  /** SIGN_REQUEST flags the bench sends. */
  readonly flags: number;
  /** Expected signature algorithm name in the reply. */
  readonly algorithm: string;
}

function generate(kind: KeyKind): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: KeyObject, priv: KeyObject): void => (err ? reject(err) : resolve(priv));
    switch (kind) {
      case 'ed25519':
        return generateKeyPair('ed25519', {}, done);
      case 'ecdsa-p256':
        return generateKeyPair('ec', { namedCurve: 'P-256' }, done);
      case 'rsa-2048':
        return generateKeyPair('rsa', { modulusLength: 2048 }, done);
      case 'rsa-4096':
        return generateKeyPair('rsa', { modulusLength: 4096 }, done);
    }
  });
}

const SIGNING: Record<KeyKind, { hash: string | null; flags: number; algorithm: string }> = {
  ed25519: { hash: null, flags: 0, algorithm: 'ssh-ed25519' },
  'ecdsa-p256': { hash: 'sha256', flags: 0, algorithm: 'ecdsa-sha2-nistp256' },
  'rsa-2048': { hash: 'sha512', flags: 4, algorithm: 'rsa-sha2-512' },
  'rsa-4096': { hash: 'sha512', flags: 4, algorithm: 'rsa-sha2-512' },
};

/** The four key types, generated in parallel (RSA-4096 takes a second or more). */
export async function generateBenchKeys(): Promise<BenchKey[]> {
  const keys = await Promise.all(KEY_KINDS.map((k) => generate(k)));
  return KEY_KINDS.map((kind, i) => ({
    kind,
    privateKey: keys[i],
    body: privateKeyBodyFromKeyObject(keys[i]),
    comment: `bench-${kind}`,
    ...SIGNING[kind],
  }));
}

/** `n` ed25519 ADD bodies for the big-keyring scenario. */
export function manyEd25519(n: number): { body: PrivateKeyBody; comment: string }[] {
  const out: { body: PrivateKeyBody; comment: string }[] = [];
  for (let i = 0; i < n; i++) {
    const { privateKey } = generateKeyPairSync('ed25519');
    out.push({ body: privateKeyBodyFromKeyObject(privateKey), comment: `bench-many-${String(i).padStart(4, '0')}` });
  }
  return out;
}

/**
 * Adds the keys over the agent protocol (pipelined on one connection) and returns the
 * agent's list afterwards, plus how long the adds took.
 */
export async function addKeys(
  socketPath: string,
  keys: readonly { body: PrivateKeyBody; comment: string }[],
): Promise<{ identities: Identity[]; addMs: number }> {
  const client = new AgentClient({ socketPath, timeoutMs: 60_000 });
  try {
    const t0 = process.hrtime.bigint();
    await Promise.all(keys.map((k) => client.add({ key: k.body, comment: k.comment })));
    const addMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const identities = await client.list();
    return { identities, addMs };
  } finally {
    client.close();
  }
}
