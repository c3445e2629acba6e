/**
 * `tsagent service install --shell-profile` in real login shells: the profile each shell reads
 * at login gets the line, and then SSH_AUTH_SOCK is tsagent's socket when it exists and
 * nothing else set one; a forwarded agent (`ssh -A`) or a missing socket leaves it alone.
 * `uninstall` takes the line out again and leaves the rest of the file as it was.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { join, resolve } from 'node:path';
import { requirePeer } from '../helpers/peers';
import { cleanEnv, removeDir, run, tempDir } from '../helpers/proc';

const BIN = join(resolve(__dirname, '../../..'), 'bin', 'tsagent.js');

const dirs: string[] = [];
const servers: Server[] = [];
after(async () => {
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  for (const d of dirs) await removeDir(d);
});

/** A login shell, the profile it reads, and how to make it print SSH_AUTH_SOCK. */
interface Shell {
  readonly name: string;
  readonly profile: (home: string) => string;
  readonly argv: (home: string) => string[];
}

/** Prints SSH_AUTH_SOCK or "unset"; the same words in every one of these shells. */
const SHOW = 'printenv SSH_AUTH_SOCK || echo unset';

const SHELLS: readonly Shell[] = [
  { name: 'bash', profile: (h) => join(h, '.profile'), argv: () => ['--login', '-c', SHOW] },
  { name: 'dash', profile: (h) => join(h, '.profile'), argv: () => ['-l', '-c', SHOW] },
  { name: 'zsh', profile: (h) => join(h, '.zprofile'), argv: () => ['-l', '-c', SHOW] },
  { name: 'fish', profile: (h) => join(h, '.config', 'fish', 'conf.d', 'tsagent.fish'), argv: () => ['-l', '-c', SHOW] },
  // tcsh reads ~/.login only as a login shell, which cannot also take -c: source it.
  { name: 'tcsh', profile: (h) => join(h, '.login'), argv: (h) => ['-f', '-c', `source ${join(h, '.login')}; ${SHOW}`] },
];

function listen(path: string): Promise<void> {
  const server = createServer();
  servers.push(server);
  return new Promise((r) => server.listen(path, r));
}

describe('tsagent service install --shell-profile', () => {
  for (const shell of SHELLS) {
    test(
      `${shell.name}: the login profile sets SSH_AUTH_SOCK only when it should; uninstall removes the line`,
      { timeout: 120_000 },
      async (t) => {
        const exe = requirePeer(t, shell.name);
        if (exe === undefined) return;
        const dir = await tempDir('tsagent-profile-');
        dirs.push(dir);
        const home = join(dir, 'home');
        mkdirSync(home);
        const before = "# the user's own line\n";
        const profile = shell.profile(home);
        mkdirSync(resolve(profile, '..'), { recursive: true });
        if (shell.name !== 'fish') writeFileSync(profile, before);
        const env = { HOME: home, SHELL: exe };
        const inst = await run(
          process.execPath,
          [BIN, 'service', 'install', '--shell-profile', '--dir', join(dir, 'units'), '--env-dir', join(dir, 'env')],
          {
            env: cleanEnv(env),
          },
        );
        assert.equal(inst.code, 0, inst.stderr);
        assert.ok(inst.stdout.includes(`added the SSH_AUTH_SOCK line to ${profile}`), inst.stdout);

        const runtime = join(dir, 'rt');
        const sock = join(runtime, 'tsagent', 'agent.sock');
        mkdirSync(join(runtime, 'tsagent'), { recursive: true, mode: 0o700 });
        const login = async (extra: NodeJS.ProcessEnv): Promise<string> => {
          const r = await run(exe, shell.argv(home), { env: cleanEnv({ ...env, ...extra }), cwd: home });
          assert.equal(r.code, 0, `${shell.name}: ${r.stderr}`);
          return r.stdout.trim().split('\n').pop() ?? '';
        };
        assert.equal(await login({ XDG_RUNTIME_DIR: runtime }), 'unset', 'no socket yet: nothing set');
        await listen(sock);
        assert.equal(await login({ XDG_RUNTIME_DIR: runtime }), sock);
        assert.equal(await login({ XDG_RUNTIME_DIR: runtime, SSH_AUTH_SOCK: '/forwarded/agent' }), '/forwarded/agent');
        assert.equal(await login({}), 'unset', 'no XDG_RUNTIME_DIR: nothing set, no error');

        const uninst = await run(
          process.execPath,
          [BIN, 'service', 'uninstall', '--dir', join(dir, 'units'), '--env-dir', join(dir, 'env')],
          {
            env: cleanEnv(env),
          },
        );
        assert.equal(uninst.code, 0, uninst.stderr);
        if (shell.name === 'fish') {
          assert.ok(uninst.stdout.includes(`removed ${profile}`), uninst.stdout);
        } else {
          assert.equal(readFileSync(profile, 'utf8'), before);
        }
        assert.equal(await login({ XDG_RUNTIME_DIR: runtime }), 'unset');
      },
    );
  }
});
