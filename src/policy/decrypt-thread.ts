/**
 * Runs only as a worker thread (see decrypt.ts): parses one private key file, decrypting it
 * with the passphrase when given. OpenSSH's bcrypt KDF takes a second or more in JavaScript,
 * which must not stall the agent's event loop. Inputs arrive transferred; the body's buffers
 * go back transferred, so no copy of the secret stays here.
 */
import { parentPort } from 'node:worker_threads';
import { InvalidKeyError, UnsupportedKeyError } from '../errors';
import { parsePrivateKeyFile } from '../keys/key-file';

interface Job {
  readonly data: Uint8Array;
  readonly passphrase: Uint8Array | null;
  readonly filename: string;
}

parentPort?.once('message', (job: Job) => {
  const data = Buffer.from(job.data.buffer, job.data.byteOffset, job.data.length);
  const pass =
    job.passphrase === null ? undefined : Buffer.from(job.passphrase.buffer, job.passphrase.byteOffset, job.passphrase.length);
  try {
    const { body } = parsePrivateKeyFile(
      data,
      pass === undefined ? { filename: job.filename } : { filename: job.filename, passphrase: pass },
    );
    // Each field in its own ArrayBuffer, transferred: a view into a shared pool would be
    // cloned whole, pool and all.
    const transfer: ArrayBuffer[] = [];
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(body)) {
      if (v instanceof Uint8Array) {
        const own = new Uint8Array(new ArrayBuffer(v.length));
        own.set(v);
        v.fill(0);
        transfer.push(own.buffer);
        out[k] = own;
      } else {
        out[k] = v;
      }
    }
    parentPort?.postMessage({ ok: true, body: out }, transfer);
  } catch (err) {
    const kind =
      err instanceof UnsupportedKeyError
        ? 'unsupported'
        : err instanceof InvalidKeyError && err.cause === 'KeyEncryptedError'
          ? 'encrypted'
          : 'invalid';
    parentPort?.postMessage({ ok: false, kind, message: err instanceof UnsupportedKeyError ? err.message : '' });
  } finally {
    data.fill(0);
    pass?.fill(0);
  }
});
