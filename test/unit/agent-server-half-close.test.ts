/**
 * A client that half-closes its connection after its last request (shutdown(SHUT_WR), as
 * `printf … | nc -U` does) still gets every reply, also one that takes time: an askpass-
 * confirmed signature here (server/connection.ts answers what was asked, then closes its
 * side). An EOF cannot tell that client from one that is gone, so an approval still open
 * for the user is withdrawn at the EOF, as for a closed connection, and answered FAILURE.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Keyring } from '../../src/agent/keyring';
import type { ApprovalPort } from '../../src/agent/ports';
import { AgentClient } from '../../src/client/agent-client';
import { privateKeyBodyFromKeyObject } from '../../src/keys/key-file';
import { encodeRequestFrame } from '../../src/protocol/codec';
import { FrameDecoder } from '../../src/protocol/frame';
import { MSG } from '../../src/protocol/messages';
import { AgentServer } from '../../src/server/agent-server';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Writes `frames`, half-closes, and collects what comes back until the agent closes (bounded). */
function sendThenHalfClose(path: string, frames: Buffer): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const replies: Buffer[] = [];
    const dec = new FrameDecoder();
    const sock = connect(path);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no close within 10 s; ${replies.length} replies so far`));
    }, 10_000);
    sock.on('connect', () => sock.end(frames));
    sock.on('data', (chunk: Buffer) => replies.push(...dec.push(chunk)));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(replies);
    });
  });
}

/**
 * Serves `keyring`, adds a confirm-constrained ed25519 key, then sends a signature request
 * and a list in one write and half-closes: the reply types that come back before the agent
 * closes.
 */
async function signAndListThenHalfClose(keyring: Keyring): Promise<number[]> {
  const server = new AgentServer({ agent: keyring });
  const dir = mkdtempSync(join(tmpdir(), 'tsagent-halfclose-'));
  const path = join(dir, 'agent.sock');
  try {
    await server.listen({ kind: 'path', path });
    const { privateKey } = generateKeyPairSync('ed25519');
    const client = new AgentClient({ socketPath: path, timeoutMs: 10_000 });
    await client.add({ key: privateKeyBodyFromKeyObject(privateKey), comment: 'confirm me', constraints: [{ type: 'confirm' }] });
    const [id] = await client.list();
    client.close();
    const sign = encodeRequestFrame({ type: 'sign', keyBlob: id.blob, data: Buffer.from('data'), flags: 0 });
    const list = encodeRequestFrame({ type: 'request-identities' });
    return (await sendThenHalfClose(path, Buffer.concat([sign, list]))).map((r) => r[0]);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('AgentServer and half-closing clients', () => {
  it('a reply that takes time still reaches a client that half-closed after asking', async () => {
    // The user answers 100 ms after the question: long after the client's EOF arrived.
    const types = await signAndListThenHalfClose(new Keyring({ confirmer: () => sleep(100).then(() => true) }));
    assert.deepEqual(types, [MSG.SIGN_RESPONSE, MSG.IDENTITIES_ANSWER], 'both replies, in order, then the agent closes');
  });

  it('an approval still open is withdrawn at the EOF and answered FAILURE; the rest is answered', async () => {
    let withdrawn = false;
    const approvals: ApprovalPort = {
      ask: (_q, signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            withdrawn = true;
            resolve({ allowed: false, reason: 'withdrawn' });
          }),
        ),
    };
    const types = await signAndListThenHalfClose(new Keyring({ approvals }));
    assert.equal(withdrawn, true, 'the question was withdrawn');
    assert.deepEqual(types, [MSG.FAILURE, MSG.IDENTITIES_ANSWER]);
  });
});
