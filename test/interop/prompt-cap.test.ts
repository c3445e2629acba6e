/**
 * Bounded confirm prompts (issue 18), through the REAL daemon's socket with a real askpass
 * program (a shell script that records each run and waits for the test to release it):
 *
 *  - 50 concurrent confirm requests over 6 keys never have more than MAX_CONCURRENT_PROMPTS
 *    askpass processes alive, never two for the same key, and all 50 are answered;
 *  - the prompt askpass gets is cut to 1023 bytes, like OpenSSH's (readpass.c).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_CONCURRENT_PROMPTS } from '../../src/agent/confirm';
import { AgentClient } from '../../src/client/agent-client';
import { AgentFailureError } from '../../src/errors';
import { privateKeyBodyFromKeyObject } from '../../src/keys/key-file';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentDaemon } from '../helpers/daemons';
import { publicBlobOf } from '../helpers/keys';
import { removeDir, sleep, tempDir, waitFor } from '../helpers/proc';

const REQUESTS = 50;
const KEYS = 6;

/**
 * askpass: records its pid and prompt under running/ while alive (and under seen/ for
 * good), waits (bounded, 30 s) for the release file, then refuses.
 */
function askpassScript(dir: string): string {
  const path = join(dir, 'askpass.sh');
  writeFileSync(
    path,
    `#!/bin/sh
d='${dir}'
printf '%s' "$1" > "$d/seen/$$"
printf '%s' "$1" > "$d/running/$$"
i=0
while [ ! -e "$d/release" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
rm -f "$d/running/$$"
exit 1
`,
  );
  chmodSync(path, 0o755);
  return path;
}

describe('confirm prompts are bounded', () => {
  let dir: string;
  let agent: AgentDaemon;
  const clients: AgentClient[] = [];

  before(async () => {
    dir = await tempDir('tsagent-prompts-');
    for (const sub of ['seen', 'running']) mkdirSync(join(dir, sub));
    agent = await startAgentDaemon('tsagent', { env: { SSH_ASKPASS: askpassScript(dir), SSH_ASKPASS_REQUIRE: 'force' } });
  });

  after(async () => {
    writeFileSync(join(dir, 'release'), '');
    for (const c of clients) c.close();
    await agent?.stop();
    await removeDir(dir);
  });

  const running = (): string[] => readdirSync(join(dir, 'running'));
  const prompts = (sub: string): string[] =>
    readdirSync(join(dir, sub)).flatMap((f) => {
      try {
        const text = readFileSync(join(dir, sub, f), 'utf8');
        return text === '' ? [] : [text]; // '' : created, not yet written by the shell
      } catch {
        return []; // finished between the listing and the read
      }
    });

  it(
    `50 concurrent confirm requests run at most ${MAX_CONCURRENT_PROMPTS} askpass processes, one per key`,
    { timeout: 120_000 },
    async () => {
      const owner = new AgentClient({ socketPath: agent.socketPath });
      clients.push(owner);
      const keys = Array.from({ length: KEYS }, () => privateKeyBodyFromKeyObject(generateKeyPairSync('ed25519').privateKey));
      for (const [i, key] of keys.entries()) await owner.add({ key, comment: `key ${i}`, constraints: [{ type: 'confirm' }] });

      let answered = 0;
      let maxAlive = 0;
      const watch = (): void => {
        const now = prompts('running');
        maxAlive = Math.max(maxAlive, now.length);
        const fps = now.map((p) => /(SHA256:\S+)/.exec(p)?.[1] ?? p);
        assert.equal(new Set(fps).size, fps.length, `two prompts open for one key: ${fps.join(', ')}`);
      };
      const signs = Array.from({ length: REQUESTS }, (_, i) => {
        const c = new AgentClient({ socketPath: agent.socketPath, timeoutMs: 100_000 });
        clients.push(c);
        return c.sign(publicBlobOf(keys[i % KEYS]), Buffer.from(`data ${i}`)).then(
          () => assert.fail('askpass refused, yet the agent signed'),
          (err: unknown) => {
            assert.ok(err instanceof AgentFailureError, `request ${i} refused with FAILURE`);
            answered++;
          },
        );
      });

      await waitFor(() => running().length >= MAX_CONCURRENT_PROMPTS, { timeoutMs: 30_000, what: 'the first prompts' });
      // Give a runaway agent every chance to start more, then count (a bounded observation, not a timing).
      for (let i = 0; i < 20; i++) {
        watch();
        await sleep(50);
      }
      assert.equal(maxAlive, MAX_CONCURRENT_PROMPTS, 'exactly the cap of prompts is open while nobody answers');
      assert.equal(answered, 0);

      writeFileSync(join(dir, 'release'), '');
      const done = Promise.all(signs);
      let finished = false;
      void done.then(() => (finished = true));
      await waitFor(
        () => {
          watch();
          return finished;
        },
        { timeoutMs: 90_000, intervalMs: 10, what: 'all 50 confirm requests to be answered' },
      );
      await done;
      assert.equal(answered, REQUESTS);
      assert.ok(maxAlive <= MAX_CONCURRENT_PROMPTS, `at most ${MAX_CONCURRENT_PROMPTS} prompts were ever open (saw ${maxAlive})`);
      assert.ok(readdirSync(join(dir, 'seen')).length <= REQUESTS, 'never more prompts than requests');
    },
  );

  it('keeps the askpass prompt within 1023 bytes, like OpenSSH', { timeout: 60_000 }, async () => {
    writeFileSync(join(dir, 'release'), '');
    const owner = new AgentClient({ socketPath: agent.socketPath });
    clients.push(owner);
    const key = privateKeyBodyFromKeyObject(generateKeyPairSync('ed25519').privateKey);
    const comment = `long-${'é'.repeat(1500)}`;
    await owner.add({ key, comment, constraints: [{ type: 'confirm' }] });
    const before = new Set(readdirSync(join(dir, 'seen')));
    await assert.rejects(owner.sign(publicBlobOf(key), Buffer.from('x')), AgentFailureError);
    const mine = readdirSync(join(dir, 'seen')).filter((f) => !before.has(f));
    assert.equal(mine.length, 1, 'one prompt for one request');
    const prompt = readFileSync(join(dir, 'seen', mine[0]));
    // The prompt (issue 14's text) caps each piece from the peer and the whole at OpenSSH's 1023 bytes.
    assert.ok(prompt.length <= 1023, `prompt is ${prompt.length} bytes`);
    assert.ok(prompt.toString('utf8').includes('long-éé'), 'the comment is shown');
    assert.ok(!prompt.toString('utf8').includes('é'.repeat(200)), 'a long comment is cut');
    assert.ok(!prompt.toString('utf8').includes('\uFFFD'), 'cut between characters, not inside one');
    assert.ok(existsSync(join(dir, 'release')));
  });
});
