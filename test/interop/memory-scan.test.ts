/**
 * No key left behind (README "What is in memory"): the real daemon, real keys added with the
 * real ssh-add and used once each with ssh-keygen -Y sign, then a core dump (gcore) scanned
 * for the raw private values (ed25519 seed, RSA d/p/q, EC scalar) in every state: unlocked at
 * rest (one copy: the one inside OpenSSL's key object, two of RSA's p and q), locked, after removing one
 * key and all keys, after a lifetime ran out, and after SIGUSR1 (none).
 * Root only: reading another process's memory needs ptrace rights (CI runs as root).
 */
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentImpl, AgentDaemon } from '../helpers/daemons';
import { generateKey } from '../helpers/keys';
import type { GeneratedKey } from '../helpers/keys';
import { scanProcess, secretValuesOf } from '../helpers/memory-scan';
import type { SecretValue } from '../helpers/memory-scan';
import { requirePeers, underCI } from '../helpers/peers';
import { removeDir, run, runOk, tempDir, waitFor } from '../helpers/proc';

/** The log line the daemon writes once dropped keys' memory has been collected (debug). */
const RELEASED = 'private key memory released';

function rootOrSkip(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  if (underCI()) throw new Error('the memory scan needs root (gcore on a non-dumpable process); CI runs as root');
  t.skip('needs root to gcore the daemon');
  return false;
}

describe('memory scan: private key bytes leave memory on lock, remove, expiry and SIGUSR1', () => {
  it('ed25519, RSA-2048 and P-256: at most one copy unlocked, none after lock/remove/expiry/SIGUSR1', async (t) => {
    if (!rootOrSkip(t)) return;
    const peers = requirePeers(t, ['ssh-add', 'ssh-keygen', 'gcore']);
    if (peers === undefined) return;
    // MEMSCAN_IMPL=openssh runs the same scan against OpenSSH's agent, for comparison (by hand).
    const impl: AgentImpl = process.env.MEMSCAN_IMPL === 'openssh' ? 'openssh' : 'tsagent';
    const dir = await tempDir('tsagent-memscan-');
    let daemon: AgentDaemon | undefined;
    try {
      const keys: Record<'ed' | 'rsa' | 'ec', GeneratedKey> = {
        ed: await generateKey(dir, 'ed25519', 'memscan-ed'),
        rsa: await generateKey(dir, 'rsa-2048', 'memscan-rsa'),
        ec: await generateKey(dir, 'ecdsa-256', 'memscan-ec'),
      };
      const values: Record<keyof typeof keys, SecretValue[]> = {
        ed: secretValuesOf('ed25519', keys.ed.privatePath),
        rsa: secretValuesOf('rsa', keys.rsa.privatePath),
        ec: secretValuesOf('p256', keys.ec.privatePath),
      };
      const all = [...values.ed, ...values.rsa, ...values.ec];
      const passFile = join(dir, 'pass');
      const askpass = join(dir, 'askpass');
      writeFileSync(passFile, 'memscan lock passphrase\n', { mode: 0o600 });
      writeFileSync(askpass, `#!/bin/sh\ncat '${passFile}'\n`);
      chmodSync(askpass, 0o700);
      const message = join(dir, 'message');
      writeFileSync(message, 'signed once\n');

      daemon = await startAgentDaemon(impl, impl === 'tsagent' ? { args: ['-d'] } : {});
      const d = daemon;
      const pid = d.child.pid!;
      const env = {
        PATH: process.env.PATH,
        HOME: dir,
        SSH_AUTH_SOCK: d.socketPath,
        SSH_ASKPASS: askpass,
        SSH_ASKPASS_REQUIRE: 'force',
        DISPLAY: ':0',
      };
      const sshAdd = (...args: string[]): Promise<unknown> => runOk(peers['ssh-add'], args, { env });
      const signOnce = async (): Promise<void> => {
        for (const k of Object.values(keys)) {
          await runOk(peers['ssh-keygen'], ['-Y', 'sign', '-f', k.publicPath, '-n', 'file', message], { env, timeoutMs: 60_000 });
        }
      };
      const releases = (): number => d.stderr().split(RELEASED).length - 1;
      /** Waits (bounded) for the daemon to report `n` collections in all. */
      const failures: string[] = [];
      const released = async (n: number): Promise<void> => {
        if (impl !== 'tsagent') return;
        // Every state is still scanned when this fails, so the whole table is reported.
        await waitFor(() => releases() >= n, { timeoutMs: 30_000, what: `memory release #${n}` }).catch((e: Error) =>
          failures.push(e.message),
        );
      };

      const table: string[] = [];
      const scan = async (state: string): Promise<Map<string, number>> => {
        const counts = await scanProcess(peers.gcore, pid, dir, all);
        table.push(`${state.padEnd(34)} ${all.map((v) => `${v.name}=${counts.get(v.name)}`).join(' ')}`);
        return counts;
      };
      /**
       * Copies allowed of each value. Held keys: one, in OpenSSL's key object; except RSA's p
       * and q, which OpenSSL's RSA key also keeps as the moduli of the Montgomery contexts it
       * caches at the first signature (freed and wiped with the key).
       */
      const allowed = (v: SecretValue, held: boolean): number => (!held ? 0 : /^rsa [pq]$/.test(v.name) ? 2 : 1);
      const atMost = (counts: Map<string, number>, vs: readonly SecretValue[], held: boolean, state: string): void => {
        for (const v of vs) {
          const max = allowed(v, held);
          if (counts.get(v.name)! > max)
            failures.push(`${state}: ${counts.get(v.name)} copies of the ${v.name} (at most ${max})`);
        }
      };
      t.after(() => t.diagnostic(`${impl} copies per state:\n${table.join('\n')}`));

      await sshAdd(keys.ed.privatePath, keys.rsa.privatePath, keys.ec.privatePath);
      // Before any signature every value is in memory once (OpenSSL's key object).
      for (const [v, n] of await scan('unlocked, added, no signature yet')) {
        if (n > 1) failures.push(`added: ${n} copies of the ${v} (at most 1)`);
      }
      await signOnce();
      atMost(await scan('unlocked, after one signature each'), all, true, 'unlocked');

      await sshAdd('-x');
      await released(1);
      atMost(await scan('locked (ssh-add -x)'), all, false, 'locked');

      await sshAdd('-X');
      await signOnce();
      await sshAdd('-d', keys.ed.publicPath);
      await released(2);
      const afterRemove = await scan('ed25519 removed (ssh-add -d)');
      atMost(afterRemove, values.ed, false, 'removed');
      atMost(afterRemove, [...values.rsa, ...values.ec], true, 'the others, still held');

      await sshAdd('-D');
      await released(3);
      atMost(await scan('all removed (ssh-add -D)'), all, false, 'all removed');

      // Long enough for the three signatures on a loaded machine; the expiry is polled below.
      await sshAdd('-t', '5', keys.ed.privatePath, keys.rsa.privatePath, keys.ec.privatePath);
      await signOnce();
      // `ssh-add -L` exits 1 once the agent has no identities left.
      await waitFor(async () => (await run(peers['ssh-add'], ['-L'], { env })).code === 1, {
        timeoutMs: 30_000,
        what: 'keys to expire',
      });
      await released(4);
      atMost(await scan('lifetime expired (ssh-add -t 5)'), all, false, 'expired');

      await sshAdd(keys.ed.privatePath, keys.rsa.privatePath, keys.ec.privatePath);
      await signOnce();
      process.kill(pid, 'SIGUSR1');
      await released(5);
      atMost(await scan('after SIGUSR1'), all, false, 'SIGUSR1');
      assert.deepEqual(failures, [], `copies per state:\n${table.join('\n')}`);
    } finally {
      await daemon?.stop();
      await removeDir(dir);
    }
  });
});
