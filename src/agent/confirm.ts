/**
 * The confirm constraint's prompt (OpenSSH ssh-agent.c confirm_key, readpass.c
 * ask_permission): run $SSH_ASKPASS with the prompt as its only argument and
 * SSH_ASKPASS_PROMPT=confirm. Approved only when it exits 0 and prints nothing or "yes".
 * The child runs asynchronously, so a pending prompt never stalls other connections.
 */
import { spawn } from 'node:child_process';

export interface ConfirmRequest {
  readonly comment: string;
  readonly fingerprint: string;
  /** A further line, e.g. where a destination-constrained key is about to be used. */
  readonly extra?: string;
}

export type Confirmer = (req: ConfirmRequest) => Promise<boolean>;

/** Debian's default when SSH_ASKPASS is unset (OpenSSH's _PATH_SSH_ASKPASS_DEFAULT). */
const DEFAULT_ASKPASS = '/usr/bin/ssh-askpass';
/** A prompt nobody answers is a refusal, not a connection held forever. */
const ASKPASS_TIMEOUT_MS = 120_000;
const MAX_ANSWER_BYTES = 1024;

export function confirmPrompt(req: ConfirmRequest): string {
  const base = `Allow use of key ${req.comment}?\nKey fingerprint ${req.fingerprint}.`;
  return req.extra === undefined ? base : `${base}\n${req.extra}`;
}

/**
 * Like readpass.c: askpass is allowed only with a display, unless SSH_ASKPASS_REQUIRE=force;
 * SSH_ASKPASS_REQUIRE=never forbids it. No askpass means no approval.
 */
export function askpassAllowed(env: NodeJS.ProcessEnv): boolean {
  const require = (env.SSH_ASKPASS_REQUIRE ?? '').toLowerCase();
  if (require === 'force') return true;
  if (require === 'never') return false;
  return Boolean(env.DISPLAY) || Boolean(env.WAYLAND_DISPLAY);
}

export function askpassConfirmer(env: NodeJS.ProcessEnv = process.env): Confirmer {
  return (req) =>
    new Promise<boolean>((resolve) => {
      if (!askpassAllowed(env)) {
        resolve(false);
        return;
      }
      const program = env.SSH_ASKPASS || DEFAULT_ASKPASS;
      let out = Buffer.alloc(0);
      let settled = false;
      const done = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(ok);
      };
      const child = spawn(program, [confirmPrompt(req)], {
        env: { ...env, SSH_ASKPASS_PROMPT: 'confirm' },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        done(false);
      }, ASKPASS_TIMEOUT_MS);
      child.stdout.on('data', (chunk: Buffer) => {
        if (out.length < MAX_ANSWER_BYTES) out = Buffer.concat([out, chunk]);
      });
      child.on('error', () => done(false));
      child.on('close', (code) => {
        const answer = out.toString('utf8').replace(/\r?\n$/, '');
        done(code === 0 && (answer === '' || answer.toLowerCase() === 'yes'));
      });
    });
}
