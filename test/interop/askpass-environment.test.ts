/**
 * The background start puts MALLOC_ARENA_MAX=1 in the agent's own environment (one malloc
 * arena, src/cli/harden.ts daemonChildEnv) and the agent drops it again (start.ts,
 * --arena-limit-set), so the programs the agent starts do not inherit it. Checked end to end:
 * a real background agent, a confirm-constrained key added with `ssh-add -c`, a signature
 * asked with `ssh-add -T`, and an askpass that records the environment it was given.
 */
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { TSAGENT_BIN } from '../helpers/daemons';
import { generateKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, deferred, removeDir, run, runOk, stopPid, tempDir } from '../helpers/proc';

test('askpass started by a background agent does not inherit its MALLOC_ARENA_MAX', async (t) => {
  const bin = requirePeers(t, ['ssh-add', 'ssh-keygen'] as const);
  if (bin === undefined) return;
  const dir = await tempDir('tsagent-askenv-');
  const defer = deferred(t);
  defer(() => removeDir(dir));

  const askpass = join(dir, 'askpass');
  const recorded = join(dir, 'askpass.env');
  await writeFile(askpass, `#!/bin/sh\nenv > '${recorded}'\nexit 0\n`);
  await chmod(askpass, 0o700);

  const agentEnv = cleanEnv({ HOME: dir, TMPDIR: dir, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force' });
  const start = await run(process.execPath, [TSAGENT_BIN, 'start', '-s'], { env: agentEnv, timeoutMs: 30_000 });
  const pid = /SSH_AGENT_PID=(\d+)/.exec(start.stdout)?.[1];
  // Stopped before its HOME (dir) is removed: clean-ups run last-registered first.
  if (pid !== undefined) defer(() => stopPid(Number(pid)));
  const sock = /SSH_AUTH_SOCK=([^;]+);/.exec(start.stdout)?.[1];
  assert.equal(start.code, 0, `tsagent start -s: ${start.stderr}`);
  assert.ok(pid !== undefined && sock !== undefined, `tsagent start -s printed: ${start.stdout}`);

  const key = await generateKey(dir, 'ed25519');
  const clientEnv = cleanEnv({ HOME: dir, SSH_AUTH_SOCK: sock });
  await runOk(bin['ssh-add'], ['-c', key.privatePath], { env: clientEnv });
  // A signature with a confirm-constrained key: the agent runs askpass, which approves.
  await runOk(bin['ssh-add'], ['-T', key.publicPath], { env: clientEnv, timeoutMs: 30_000 });

  const environment = (await readFile(recorded, 'utf8')).split('\n');
  assert.ok(environment.includes('SSH_ASKPASS_PROMPT=confirm'), 'askpass ran for the confirmation');
  assert.deepEqual(
    environment.filter((line) => line.startsWith('MALLOC_ARENA_MAX=')),
    [],
    'the agent dropped the arena limit its launcher set',
  );
});
