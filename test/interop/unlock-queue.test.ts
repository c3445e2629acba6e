/**
 * One unlock queue for the whole agent (issue 18), through a Unix socket: 100 connections
 * each send a wrong passphrase at once. The agent must try them one at a time, each after
 * the previous one's back-off, so together they take at least the serial time: the sum of
 * 0.1 s, 0.2 s, ... (capped at 10 s) — while a list on another connection is answered.
 *
 * No wall clock is asserted: the keyring's back-off is a gate this test opens. While attempt
 * k is held in its back-off, exactly k-1 replies may have left and no attempt after k may
 * have started; the back-off asked for attempt k is OpenSSH's 0.1 s * k (capped at 10 s).
 * The server is the daemon's own (AgentServer + Keyring), in this process so the gate can
 * be handed in; the clients are real socket clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { Keyring } from '../../src/agent/keyring';
import { AgentClient } from '../../src/client/agent-client';
import { AgentFailureError } from '../../src/errors';
import { AgentServer } from '../../src/server/agent-server';
import { testKey } from '../helpers/keys';
import { removeDir, tempDir, waitFor } from '../helpers/proc';

const CONNECTIONS = 100;

interface Held {
  readonly ms: number;
  readonly release: () => void;
}

describe('unlock attempts from many connections share one queue', () => {
  const held: Held[] = [];
  let open = 0;
  let maxOpen = 0;
  const backoff = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      held.push({
        ms,
        release: () => {
          open--;
          resolve();
        },
      });
    });
  const keyring = new Keyring({ unlockBackoff: backoff, confirmer: async () => false });
  const server = new AgentServer({ agent: keyring });
  let dir: string;
  let socketPath: string;
  const clients: AgentClient[] = [];

  before(async () => {
    dir = await tempDir('tsagent-unlockq-');
    socketPath = join(dir, 'agent.sock');
    await server.listen({ kind: 'path', path: socketPath });
  });

  after(async () => {
    for (const h of held) h.release();
    for (const c of clients) c.close();
    await server.close();
    await removeDir(dir);
  });

  it('100 parallel wrong unlocks are tried one by one, each after the previous back-off', { timeout: 240_000 }, async () => {
    const owner = new AgentClient({ socketPath });
    const other = new AgentClient({ socketPath });
    clients.push(owner, other);
    const key = testKey('ed25519');
    await owner.add({ key: key.body, comment: 'queued' });
    await owner.lock(Buffer.from('right'));

    let answered = 0;
    const attempts = Array.from({ length: CONNECTIONS }, (_, i) => {
      const c = new AgentClient({ socketPath, timeoutMs: 120_000 });
      clients.push(c);
      return c.unlock(Buffer.from(`wrong ${i}`)).then(
        () => assert.fail('a wrong passphrase unlocked the agent'),
        (err: unknown) => {
          assert.ok(err instanceof AgentFailureError, `wrong unlock ${i} refused with FAILURE`);
          answered++;
        },
      );
    });

    let serial = 0;
    for (let k = 1; k <= CONNECTIONS; k++) {
      await waitFor(() => held.length >= k, { timeoutMs: 30_000, what: `attempt ${k} to reach its back-off` });
      assert.equal(held.length, k, 'no attempt starts while another is in its back-off');
      assert.equal(open, 1, 'one attempt at a time holds the queue');
      assert.ok(answered <= k - 1, `at most ${k - 1} replies before attempt ${k} is done (saw ${answered})`);
      assert.equal(held[k - 1].ms, Math.min(100 * k, 10_000), `attempt ${k} waits 0.1 s times the failures so far`);
      serial += held[k - 1].ms;
      if (k === CONNECTIONS / 2) {
        // The queue holds every unlock, and nothing else.
        assert.deepEqual(await other.list(), [], 'a list on another connection is answered (empty: locked)');
      }
      held[k - 1].release();
      await waitFor(() => answered >= k, { timeoutMs: 30_000, what: `reply to attempt ${k}` });
    }
    await Promise.all(attempts);
    assert.equal(maxOpen, 1);
    // Serial time for 100 wrong guesses: 0.1 + 0.2 + ... + 10 s, all spent one after another.
    assert.equal(
      serial,
      Array.from({ length: CONNECTIONS }, (_, i) => Math.min(100 * (i + 1), 10_000)).reduce((a, b) => a + b),
    );

    await owner.unlock(Buffer.from('right'));
    assert.equal((await other.list()).length, 1, 'the right passphrase still unlocks, after the queue');
  });
});
