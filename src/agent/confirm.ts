/**
 * The confirm constraint's prompt (OpenSSH ssh-agent.c confirm_key, readpass.c
 * ask_permission): run $SSH_ASKPASS with the prompt as its only argument and
 * SSH_ASKPASS_PROMPT=confirm. Approved only when it exits 0 and prints nothing or "yes".
 * The child runs asynchronously, so a pending prompt never stalls other connections.
 *
 * Prompts are bounded (a local client must not be able to fill the screen or the process
 * table): at most one prompt per key at a time and MAX_CONCURRENT_PROMPTS in all; further
 * requests wait their turn in arrival order, at most MAX_WAITING_PROMPTS of them, and any
 * beyond that are refused without a prompt.
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
/** OpenSSH readpass.c ask_permission formats the prompt into 1024 bytes: 1023 and a NUL. */
export const MAX_PROMPT_BYTES = 1023;
/** Askpass prompts open at once across all keys. */
export const MAX_CONCURRENT_PROMPTS = 3;
/** Confirm requests that may wait for a prompt; more are refused at once. */
export const MAX_WAITING_PROMPTS = 64;

export function confirmPrompt(req: ConfirmRequest): string {
  const base = `Allow use of key ${req.comment}?\nKey fingerprint ${req.fingerprint}.`;
  return truncateUtf8(req.extra === undefined ? base : `${base}\n${req.extra}`, MAX_PROMPT_BYTES);
}

/** At most `max` UTF-8 bytes of `s`, cut before a character rather than inside one. */
export function truncateUtf8(s: string, max: number): string {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length <= max) return s;
  let end = max;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--; // back off a continuation byte
  return bytes.subarray(0, end).toString('utf8');
}

export interface PromptLimits {
  readonly maxConcurrent?: number;
  readonly maxWaiting?: number;
}

/**
 * Wraps a confirmer so that one key never has two prompts open and no more than
 * `maxConcurrent` are open in all; waiting requests start in arrival order (one whose key
 * is busy lets the next one by); past `maxWaiting` waiting, a request is refused.
 */
export function limitPrompts(confirmer: Confirmer, limits: PromptLimits = {}): Confirmer {
  const maxConcurrent = Math.max(1, limits.maxConcurrent ?? MAX_CONCURRENT_PROMPTS);
  const maxWaiting = limits.maxWaiting ?? MAX_WAITING_PROMPTS;
  const open = new Set<string>();
  const waiting: { readonly req: ConfirmRequest; readonly resolve: (ok: boolean) => void }[] = [];

  const startNext = (): void => {
    for (let i = 0; i < waiting.length && open.size < maxConcurrent;) {
      const w = waiting[i];
      if (open.has(w.req.fingerprint)) {
        i++;
        continue;
      }
      waiting.splice(i, 1);
      open.add(w.req.fingerprint);
      const finish = (ok: boolean): void => {
        open.delete(w.req.fingerprint);
        w.resolve(ok);
        startNext();
      };
      confirmer(w.req).then(finish, () => finish(false));
    }
  };

  return (req) =>
    new Promise<boolean>((resolve) => {
      if (waiting.length >= maxWaiting) {
        resolve(false);
        return;
      }
      waiting.push({ req, resolve });
      startNext();
    });
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

/** The daemon's confirmer: $SSH_ASKPASS, bounded by `limitPrompts`. */
export function askpassConfirmer(env: NodeJS.ProcessEnv = process.env, limits: PromptLimits = {}): Confirmer {
  return limitPrompts(runAskpass(env), limits);
}

/** One askpass run per call, unbounded: only ever used through `limitPrompts`. */
function runAskpass(env: NodeJS.ProcessEnv): Confirmer {
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
