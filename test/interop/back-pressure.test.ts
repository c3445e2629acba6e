/**
 * Back-pressure of the REAL daemon, through its socket (issue 18): a client that pipelines
 * add+list requests and never reads the replies must cost the agent a bounded amount of
 * memory, must not keep another client from being answered, and once it disconnects the
 * agent's memory returns to within 10 MB of where it was.
 *
 * Each hostile add re-adds one key under a new comment, so every list after it is a freshly
 * encoded ~220 KB reply (the cached list frame cannot be reused): before back-pressure, 2,000
 * such pairs grew the agent by hundreds of MB.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AgentClient } from '../../src/client/agent-client';
import { privateKeyBodyFromKeyObject } from '../../src/keys/key-file';
import { encodeRequestFrame } from '../../src/protocol/codec';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentDaemon } from '../helpers/daemons';
import { sleep, waitFor } from '../helpers/proc';

const KEYS = 300;
const COMMENT_BYTES = 700;
const HOSTILE_PAIRS = 2000;
/** Bounds, generous for a loaded 2-core box: the agent's own bound is ~0.5 MB per connection. */
const MAX_GROWTH_BYTES = 64 * 1024 * 1024;
const RETURN_WITHIN_BYTES = 10 * 1024 * 1024;

/** The daemon's resident set, from /proc (Linux). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/PID/status');
  return Number(m[1]) * 1024;
}

function withinMs<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

describe('back-pressure: a client that does not read its replies', { skip: process.platform !== 'linux' }, () => {
  let agent: AgentDaemon;
  let client: AgentClient;
  let hostile: Socket | undefined;

  before(async () => {
    agent = await startAgentDaemon('tsagent');
    client = new AgentClient({ socketPath: agent.socketPath });
    const comment = 'c'.repeat(COMMENT_BYTES);
    await Promise.all(
      Array.from({ length: KEYS }, (_, i) =>
        client.add({ key: privateKeyBodyFromKeyObject(generateKeyPairSync('ed25519').privateKey), comment: `${i}-${comment}` }),
      ),
    );
  });

  after(async () => {
    hostile?.destroy();
    client?.close();
    await agent?.stop();
  });

  it('costs a bounded amount of memory, keeps others answered, and is given back after disconnect', async () => {
    const pid = agent.child.pid!;
    const key = privateKeyBodyFromKeyObject(generateKeyPairSync('ed25519').privateKey);
    // Warm the agent up with what the hostile client will ask, read by a polite client, so
    // the baseline already includes the heap that work needs; what is left is the unread part.
    for (let i = 0; i < 200; i++) {
      await client.add({ key, comment: `polite ${i}` });
      assert.equal((await client.list()).length, KEYS + 1);
    }
    await sleep(500);
    const baseline = rssOf(pid);

    const list = encodeRequestFrame({ type: 'request-identities' });
    const burst = Buffer.concat(
      Array.from({ length: HOSTILE_PAIRS }, (_, i) =>
        Buffer.concat([
          encodeRequestFrame({ type: 'add-identity', key, comment: `hostile ${i}`, constraints: [], constrained: false }),
          list,
        ]),
      ),
    );
    const sock = connect(agent.socketPath);
    hostile = sock;
    sock.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    sock.pause(); // never read a reply
    sock.write(burst);

    // While the hostile client is connected, sample the agent's memory and ask as someone else.
    let peak = baseline;
    for (let i = 0; i < 20; i++) {
      const ids = await withinMs(client.list(), 20_000, `list on another connection (round ${i})`);
      assert.equal(ids.length, KEYS + 1, 'the other client gets the whole, current list');
      peak = Math.max(peak, rssOf(pid));
      await sleep(100);
    }
    const mb = (n: number): string => (n / 1048576).toFixed(1);
    process.stdout.write(`# back-pressure: RSS baseline ${mb(baseline)} MB, peak ${mb(peak)} MB with a non-reading client\n`);
    assert.ok(sock.writableLength > 0, 'the agent stopped reading: the burst is still queued on our side');
    assert.ok(
      peak - baseline < MAX_GROWTH_BYTES,
      `RSS grew by ${mb(peak - baseline)} MB under a non-reading client (bound ${MAX_GROWTH_BYTES / 1048576} MB)`,
    );

    sock.destroy();
    hostile = undefined;
    let now = rssOf(pid);
    await waitFor(
      async () => {
        // A request or two lets the agent run its timers (and V8 its idle GC). The re-add, as
        // in the warm-up, makes the agent collect (agent/key-release.ts), so the baseline and
        // this sample are both taken after a full collection.
        await client.add({ key, comment: 'polite again' });
        await client.list();
        now = rssOf(pid);
        return now - baseline <= RETURN_WITHIN_BYTES;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'agent memory to return within 10 MB of its baseline' },
    );
    process.stdout.write(`# back-pressure: RSS ${mb(now)} MB after the disconnect\n`);
  });
});
