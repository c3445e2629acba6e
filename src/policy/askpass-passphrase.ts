/**
 * Asking a registered key's passphrase through $SSH_ASKPASS (POLICY.md §3), as ssh asks
 * for one: the prompt (naming the key) is the only argument, SSH_ASKPASS_PROMPT is unset (so
 * askpass shows an entry field rather than a yes/no question), and the answer is its stdout
 * up to the first newline. Exit status other than 0 means cancelled. The answer stays in
 * Buffers, which are zeroed once copied; it never reaches argv, the environment or a log.
 */
import { spawn } from 'node:child_process';
import type { PassphraseAsker } from './registered-keys';

const DEFAULT_ASKPASS = '/usr/bin/ssh-askpass';
const ASKPASS_TIMEOUT_MS = 120_000;
const MAX_PASSPHRASE_BYTES = 1024;

/** readpass.c's rule: askpass needs a display unless SSH_ASKPASS_REQUIRE=force; "never" forbids it. */
function mayRunAskpass(env: NodeJS.ProcessEnv): boolean {
  const mode = (env.SSH_ASKPASS_REQUIRE ?? '').toLowerCase();
  return mode === 'force' || (mode !== 'never' && Boolean(env.DISPLAY || env.WAYLAND_DISPLAY));
}

export function askpassPassphrase(env: NodeJS.ProcessEnv = process.env): PassphraseAsker {
  return (prompt, _attempt, signal) =>
    new Promise<Buffer | null>((resolve) => {
      if (!mayRunAskpass(env) || signal?.aborted === true) {
        resolve(null);
        return;
      }
      const childEnv = { ...env };
      delete childEnv.SSH_ASKPASS_PROMPT;
      const out = Buffer.alloc(MAX_PASSPHRASE_BYTES + 1);
      let got = 0;
      let settled = false;
      const done = (answer: Buffer | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        out.fill(0);
        resolve(answer);
      };
      const child = spawn(env.SSH_ASKPASS || DEFAULT_ASKPASS, [prompt], { env: childEnv, stdio: ['ignore', 'pipe', 'ignore'] });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        done(null);
      }, ASKPASS_TIMEOUT_MS);
      child.stdout.on('data', (chunk: Buffer) => {
        const n = Math.min(chunk.length, out.length - got);
        chunk.copy(out, got, 0, n);
        chunk.fill(0);
        got += n;
      });
      // Answered elsewhere (tsagent unlock-key): the prompt goes away.
      signal?.addEventListener(
        'abort',
        () => {
          child.kill('SIGKILL');
          done(null);
        },
        { once: true },
      );
      child.on('error', () => done(null));
      child.on('close', (code) => {
        if (code !== 0 || got > MAX_PASSPHRASE_BYTES) {
          done(null);
          return;
        }
        let end = out.indexOf(0x0a);
        if (end < 0 || end > got) end = got;
        if (end > 0 && out[end - 1] === 0x0d) end--;
        done(Buffer.from(out.subarray(0, end)));
      });
    });
}
