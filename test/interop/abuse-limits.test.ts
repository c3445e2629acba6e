/**
 * The small limits of issue 18, through the REAL daemon's socket and real OpenSSH:
 *
 *  - a key whose comment contains NUL is refused (FAILURE), exactly as OpenSSH's ssh-agent
 *    refuses it; the same key with a clean comment is accepted;
 *  - a list that would not fit in one 256 KiB frame (4,000 keys) is answered FAILURE, so
 *    the real `ssh-add -l` reports "agent refused operation" instead of losing the
 *    connection, and the agent keeps serving (README, "Limits").
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AgentClient } from '../../src/client/agent-client';
import { AgentFailureError } from '../../src/errors';
import { privateKeyBodyFromKeyObject } from '../../src/keys/key-file';
import { encodeRequest } from '../../src/protocol/codec';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentDaemon } from '../helpers/daemons';
import { findPeerOrFail } from '../helpers/peers';
import { run } from '../helpers/proc';

const FAILURE = 5;
const SUCCESS = 6;
const MANY_KEYS = 4000;

/** One request frame, one reply type byte (bounded wait). */
function ask(socketPath: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no reply within 10 s'));
    }, 10_000);
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 5) {
        clearTimeout(timer);
        sock.destroy();
        resolve(got[4]);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.write(Buffer.concat([head, body]));
  });
}

describe('limits under abuse', () => {
  let tsagent: AgentDaemon;
  let openssh: AgentDaemon;

  before(async () => {
    tsagent = await startAgentDaemon('tsagent');
    openssh = await startAgentDaemon('openssh');
  });

  after(async () => {
    await tsagent?.stop();
    await openssh?.stop();
  });

  it('refuses a key whose comment contains NUL, as OpenSSH does', async () => {
    const key = privateKeyBodyFromKeyObject(generateKeyPairSync('ed25519').privateKey);
    const withNul = encodeRequest({
      type: 'add-identity',
      key,
      comment: 'before\0after',
      constraints: [{ type: 'confirm' }],
      constrained: true,
    });
    const clean = encodeRequest({
      type: 'add-identity',
      key,
      comment: 'before after',
      constraints: [{ type: 'confirm' }],
      constrained: true,
    });
    for (const agent of [openssh, tsagent]) {
      assert.equal(await ask(agent.socketPath, withNul), FAILURE, `${agent.impl} refuses a NUL in the comment`);
      const c = new AgentClient({ socketPath: agent.socketPath });
      try {
        assert.deepEqual(await c.list(), [], `${agent.impl} holds nothing after the refusal`);
        assert.equal(await ask(agent.socketPath, clean), SUCCESS, `${agent.impl} takes the same key with a clean comment`);
        assert.deepEqual(
          (await c.list()).map((id) => id.comment),
          ['before after'],
        );
        await c.removeAll();
      } finally {
        c.close();
      }
    }
  });

  it(
    'answers a list over the 256 KiB frame limit with FAILURE: ssh-add -l says so, the agent serves on',
    { timeout: 240_000 },
    async () => {
      const sshAdd = findPeerOrFail('ssh-add');
      const c = new AgentClient({ socketPath: tsagent.socketPath });
      try {
        // 4,000 ed25519 keys with 40-byte comments: ~4000 * 103 bytes, well over 256 KiB.
        const comment = (i: number): string => `key-${String(i).padStart(5, '0')}-${'x'.repeat(30)}`;
        for (let i = 0; i < MANY_KEYS; i += 200) {
          await Promise.all(
            Array.from({ length: Math.min(200, MANY_KEYS - i) }, (_, j) =>
              c.add({ key: privateKeyBodyFromKeyObject(generateKeyPairSync('ed25519').privateKey), comment: comment(i + j) }),
            ),
          );
        }
        const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', SSH_AUTH_SOCK: tsagent.socketPath };
        const l = await run(sshAdd, ['-l'], { env, timeoutMs: 30_000 });
        assert.notEqual(l.code, 0, `ssh-add -l cannot list ${MANY_KEYS} keys`);
        assert.match(l.stderr, /agent refused operation/, `ssh-add -l: ${l.stderr}`);
        await assert.rejects(c.list(), AgentFailureError, 'the client library sees FAILURE too');
        // The agent is still there, on the same connection and on new ones.
        assert.equal((await run(sshAdd, ['-D'], { env, timeoutMs: 30_000 })).code, 0, 'ssh-add -D still works');
        const after = await run(sshAdd, ['-l'], { env, timeoutMs: 30_000 });
        assert.equal(after.code, 1);
        assert.match(after.stdout, /The agent has no identities/);
        assert.deepEqual(await c.list(), []);
      } finally {
        c.close();
      }
    },
  );
});
