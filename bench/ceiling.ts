/**
 * The ceiling: how fast node:crypto signs in this process, with the same keys and data
 * sizes the agents get — the synchronous form in a tight loop, and the callback form
 * (libuv thread pool) with 1 and with 16 signatures outstanding.
 */
import { sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { BenchKey, KeyKind } from './keys';

export interface CeilingResult {
  readonly kind: KeyKind;
  /** crypto.sign(hash, data, key) in a loop on this thread. */
  readonly syncOpsPerSec: number;
  /** Callback form, one outstanding. */
  readonly callback1OpsPerSec: number;
  /** Callback form, 16 outstanding (uses the thread pool: UV_THREADPOOL_SIZE, default 4). */
  readonly callback16OpsPerSec: number;
}

type SignKey = KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' };

function signKey(k: BenchKey): SignKey {
  // tsagent asks OpenSSL for r||s and re-encodes; the DER form costs the same.
  return k.kind === 'ecdsa-p256' ? { key: k.privateKey, dsaEncoding: 'ieee-p1363' } : k.privateKey;
}

function syncRate(k: BenchKey, datas: readonly Buffer[], ms: number): number {
  const key = signKey(k);
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(ms * 1e6));
  let n = 0;
  let now = t0;
  // At least a few signatures even in --tiny, so the number means something.
  while (now < end || n < 3) {
    sign(k.hash, datas[n % datas.length], key);
    n++;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - t0) / 1e9);
}

function callbackRate(k: BenchKey, datas: readonly Buffer[], ms: number, outstanding: number): Promise<number> {
  const key = signKey(k);
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const end = t0 + BigInt(Math.round(ms * 1e6));
    let done = 0;
    let started = 0;
    let inFlight = 0;
    let failed = false;
    const one = (): void => {
      inFlight++;
      sign(k.hash, datas[started++ % datas.length], key, (err) => {
        inFlight--;
        if (failed) return;
        if (err) {
          failed = true;
          reject(err);
          return;
        }
        done++;
        if (process.hrtime.bigint() < end || done < 3) one();
        else if (inFlight === 0) resolve(done / (Number(process.hrtime.bigint() - t0) / 1e9));
      });
    };
    for (let i = 0; i < outstanding; i++) one();
  });
}

export async function measureCeiling(k: BenchKey, datas: readonly Buffer[], ms: number): Promise<CeilingResult> {
  // A short untimed warm-up so the first key use (OpenSSL precomputation, JIT) is not counted.
  syncRate(k, datas, Math.min(50, ms / 4));
  const syncOpsPerSec = syncRate(k, datas, ms);
  const callback1OpsPerSec = await callbackRate(k, datas, ms, 1);
  const callback16OpsPerSec = await callbackRate(k, datas, ms, 16);
  return { kind: k.kind, syncOpsPerSec, callback1OpsPerSec, callback16OpsPerSec };
}
