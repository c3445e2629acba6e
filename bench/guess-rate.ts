/**
 * Unlock guesses per second against a locked tsagent, from N connections at once (issue 18):
 *   node dist/bench/guess-rate.js [CONNECTIONS=100] [SECONDS=20]
 * Starts `tsagent start -D` on a fresh socket, locks it, lets every connection send wrong
 * passphrases back to back, and counts the answers within the window. Killed by PID at the end.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AgentClient } from '../src/client/agent-client';

async function main(): Promise<void> {
  const connections = Number(process.argv[2] ?? 100);
  const seconds = Number(process.argv[3] ?? 20);
  const dir = mkdtempSync(join(tmpdir(), 'tsagent-guess-'));
  const socketPath = join(dir, 'agent.sock');
  const child = spawn(process.execPath, [resolve(__dirname, '../../bin/tsagent.js'), 'start', '-D', '-a', socketPath], {
    stdio: 'ignore',
  });
  const clients: AgentClient[] = [];
  try {
    for (let i = 0; i < 150 && !existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 100));
    const owner = new AgentClient({ socketPath });
    clients.push(owner);
    await owner.lock(Buffer.from('the right one'));
    let guesses = 0;
    let stop = false;
    for (let i = 0; i < connections; i++) {
      const c = new AgentClient({ socketPath, timeoutMs: 3_600_000 });
      clients.push(c);
      void (async () => {
        while (!stop) {
          await c.unlock(Buffer.from(`guess ${i}`)).catch(() => undefined);
          if (!stop) guesses++;
        }
      })();
    }
    await new Promise((r) => setTimeout(r, seconds * 1000));
    stop = true;
    process.stdout.write(
      `${connections} connections: ${guesses} wrong guesses answered in ${seconds} s = ${(guesses / seconds).toFixed(2)}/s\n`,
    );
  } finally {
    for (const c of clients) c.close();
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
