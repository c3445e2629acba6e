/**
 * AgentServer's onQuiet (server/agent-server.ts): runs once the agent has had no connection
 * for QUIET_MS, once per quiet spell, and never while a connection is open.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Keyring } from '../../src/agent/keyring';
import { AgentClient } from '../../src/client/agent-client';
import { AgentServer, QUIET_MS } from '../../src/server/agent-server';
import { waitFor } from '../helpers/proc';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('AgentServer onQuiet', () => {
  it('runs once after the last connection closes and none opens for QUIET_MS', async () => {
    let quiet = 0;
    const server = new AgentServer({ agent: new Keyring(), onQuiet: () => quiet++ });
    const dir = mkdtempSync(join(tmpdir(), 'tsagent-quiet-'));
    const path = join(dir, 'agent.sock');
    try {
      await server.listen({ kind: 'path', path });
      await sleep(QUIET_MS + 200);
      assert.equal(quiet, 0, 'not before any connection');
      // One connection open for longer than QUIET_MS: nothing runs while it is open.
      const held = new AgentClient({ socketPath: path, timeoutMs: 10_000 });
      await held.list();
      await sleep(QUIET_MS + 200);
      assert.equal(quiet, 0, 'not while a connection is open');
      held.close();
      // Connections in a row keep the spell from ending; then it runs once.
      for (let i = 0; i < 3; i++) {
        const c = new AgentClient({ socketPath: path, timeoutMs: 10_000 });
        await c.list();
        c.close();
        await sleep(QUIET_MS / 4);
      }
      await waitFor(() => quiet === 1, { timeoutMs: 5 * QUIET_MS });
      await sleep(QUIET_MS + 200);
      assert.equal(quiet, 1, 'once per quiet spell');
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
