/**
 * What "shielding between uses" would cost (README "What is in memory, and when"): keep only
 * the sealed form of a key while it is not signing, and per signature open the box, import
 * the key into OpenSSL, sign, wipe and drop it. Measured against signing with the held
 * KeyObject (what tsagent does), in this process, without sockets:
 *
 *   node dist/bench/shield.js [--duration-ms N]
 *
 * Prints per key type: µs per signature held, µs per signature shielded (unseal + import +
 * sign) as tsagent seals today (PKCS#8), the same with the key sealed in the cheaper DER form
 * OpenSSL reads for it (PKCS#1 for RSA, SEC1 for ECDSA; ed25519 has only PKCS#8), and the
 * imports alone.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { sealPrivateKey, unsealPrivateKey } from '../src/agent/key-sealing';

type Kind = 'ed25519' | 'ecdsa-p256' | 'rsa-2048' | 'rsa-4096';

function keyOf(kind: Kind): KeyObject {
  switch (kind) {
    case 'ed25519':
      return generateKeyPairSync('ed25519').privateKey;
    case 'ecdsa-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    case 'rsa-4096':
      return generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey;
  }
}

const HASH: Readonly<Record<Kind, string | null>> = {
  ed25519: null,
  'ecdsa-p256': 'sha256',
  'rsa-2048': 'sha512',
  'rsa-4096': 'sha512',
};

/** Mean µs per call of `fn`, run for about `ms` after a short warm-up. */
function perCall(ms: number, fn: () => void): number {
  const warm = Date.now() + Math.min(200, ms / 5);
  while (Date.now() < warm) fn();
  let n = 0;
  const start = process.hrtime.bigint();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    fn();
    n++;
  }
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

function main(): void {
  const i = process.argv.indexOf('--duration-ms');
  const ms = i > 0 ? Number(process.argv[i + 1]) : 1000;
  const data = randomBytes(256);
  const sealingKey = randomBytes(32);
  const rows: string[] = [
    'key          held µs  shielded pkcs8 µs  shielded pkcs1/sec1 µs  import pkcs8 µs  import pkcs1/sec1 µs',
  ];
  for (const kind of ['ed25519', 'ecdsa-p256', 'rsa-2048', 'rsa-4096'] as Kind[]) {
    const key = keyOf(kind);
    const hash = HASH[kind];
    const sealed = sealPrivateKey(key, sealingKey);
    const held = perCall(ms, () => sign(hash, data, key));
    const shielded = perCall(ms, () => sign(hash, data, unsealPrivateKey(sealed, sealingKey)!));
    const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
    const importPkcs8 = perCall(ms, () => createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
    let importOther = NaN;
    let shieldedOther = NaN;
    if (kind !== 'ed25519') {
      const type = kind === 'ecdsa-p256' ? 'sec1' : 'pkcs1';
      const der = key.export({ format: 'der', type });
      importOther = perCall(ms, () => createPrivateKey({ key: der, format: 'der', type }));
      const nonce = randomBytes(nacl.secretbox.nonceLength);
      const box = nacl.secretbox(der, nonce, sealingKey);
      shieldedOther = perCall(ms, () => {
        const opened = nacl.secretbox.open(box, nonce, sealingKey)!;
        sign(
          hash,
          data,
          createPrivateKey({ key: Buffer.from(opened.buffer, opened.byteOffset, opened.length), format: 'der', type }),
        );
        opened.fill(0);
      });
      der.fill(0);
    }
    pkcs8.fill(0);
    const f = (v: number): string => (Number.isNaN(v) ? '-' : v.toFixed(1));
    rows.push(
      `${kind.padEnd(12)} ${f(held).padStart(7)}  ${f(shielded).padStart(17)}  ${f(shieldedOther).padStart(22)}  ${f(importPkcs8).padStart(15)}  ${f(importOther).padStart(20)}`,
    );
  }
  process.stdout.write(rows.join('\n') + '\n');
}

main();
