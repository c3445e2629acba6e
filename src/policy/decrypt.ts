/**
 * Parses (and decrypts) a private key file off the event loop, in a short-lived worker thread
 * (decrypt-thread.ts): a signature for another connection must not wait a second for one
 * key's bcrypt KDF. The copies handed to the worker are transferred, and zeroed there.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { PrivateKeyBody } from '../protocol/private-key';

export type DecryptOutcome =
  | { readonly ok: true; readonly body: PrivateKeyBody }
  | { readonly ok: false; readonly kind: 'encrypted' | 'unsupported' | 'invalid'; readonly message: string };

/** A fresh ArrayBuffer holding a copy of `b`, to transfer. */
function transferable(b: Buffer): Uint8Array {
  const u = new Uint8Array(new ArrayBuffer(b.length));
  u.set(b);
  return u;
}

function revive(body: Record<string, unknown>): PrivateKeyBody {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) out[k] = v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.length) : v;
  return out as unknown as PrivateKeyBody;
}

export function parsePrivateKeyInWorker(data: Buffer, passphrase: Buffer | null, filename: string): Promise<DecryptOutcome> {
  return new Promise<DecryptOutcome>((resolve, reject) => {
    const worker = new Worker(join(__dirname, 'decrypt-thread.js'));
    let settled = false;
    worker.once(
      'message',
      (m: { ok: boolean; body?: Record<string, unknown>; kind?: 'encrypted' | 'unsupported' | 'invalid'; message?: string }) => {
        settled = true;
        void worker.terminate();
        if (m.ok && m.body !== undefined) resolve({ ok: true, body: revive(m.body) });
        else resolve({ ok: false, kind: m.kind ?? 'invalid', message: m.message ?? '' });
      },
    );
    worker.once('error', (err) => {
      if (!settled) reject(err);
    });
    worker.once('exit', () => {
      if (!settled) reject(new Error('key decryption thread exited'));
    });
    const job = { data: transferable(data), passphrase: passphrase === null ? null : transferable(passphrase), filename };
    const list = [job.data.buffer as ArrayBuffer];
    if (job.passphrase !== null) list.push(job.passphrase.buffer as ArrayBuffer);
    worker.postMessage(job, list);
  });
}
