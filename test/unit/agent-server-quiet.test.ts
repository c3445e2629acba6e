/**
 * AgentServer's onQuiet (server/agent-server.ts): runs once the agent has had no connection
 * for the quiet time, once per quiet spell, and not when a connection is open by then.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Keyring } from '../../src/agent/keyring';
import { AgentClient } from '../../src/client/agent-client';
import { silentLogger } from '../../src/log';
import type { Logger } from '../../src/log';
import { AgentServer } from '../../src/server/agent-server';
import { waitFor } from '../helpers/proc';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Long enough that a connect right after a close always comes first, even on a loaded machine. */
const QUIET = 2000;

describe('AgentServer onQuiet', () => {
  it('runs once after the last connection closes and none is open when the quiet time ends', async () => {
    let quiet = 0;
    const server = new AgentServer({ agent: new Keyring(), onQuiet: () => quiet++, quietMs: QUIET });
    const dir = mkdtempSync(join(tmpdir(), 'tsagent-quiet-'));
    const path = join(dir, 'agent.sock');
    const open = async (): Promise<AgentClient> => {
      const c = new AgentClient({ socketPath: path, timeoutMs: 10_000 });
      await c.list();
      return c;
    };
    try {
      await server.listen({ kind: 'path', path });
      // A close arms the timer; a connection opened at once is still open when it ends.
      const first = await open();
      first.close();
      await waitFor(() => server.connectionCount === 0, { timeoutMs: 5000, intervalMs: 5 });
      const held = await open();
      await sleep(QUIET + 300);
      assert.equal(quiet, 0, 'not while a connection is open');
      held.close();
      await waitFor(() => quiet === 1, { timeoutMs: 10 * QUIET });
      // Nothing closed since: no second run.
      await sleep(QUIET + 300);
      assert.equal(quiet, 1, 'once per quiet spell');
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a task that throws is logged and the agent carries on', async () => {
    const warned: string[] = [];
    const logger: Logger = {
      ...silentLogger(),
      warn: (a: object | string, msg?: string) => void warned.push(msg ?? (typeof a === 'string' ? a : '')),
    };
    const server = new AgentServer({
      agent: new Keyring(),
      quietMs: 50,
      onQuiet: () => {
        throw new Error('no libc');
      },
      logger,
    });
    const dir = mkdtempSync(join(tmpdir(), 'tsagent-quiet-'));
    const path = join(dir, 'agent.sock');
    try {
      await server.listen({ kind: 'path', path });
      const c = new AgentClient({ socketPath: path, timeoutMs: 10_000 });
      await c.list();
      c.close();
      await waitFor(() => warned.length === 1, { timeoutMs: 5000 });
      const again = new AgentClient({ socketPath: path, timeoutMs: 10_000 });
      assert.deepEqual(await again.list(), []);
      again.close();
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
