/**
 * The askpass method (POLICY.md §4): $SSH_ASKPASS run as OpenSSH runs it for a confirmation
 * (readpass.c ask_permission): the prompt text is its only argument, SSH_ASKPASS_PROMPT=confirm
 * is in its environment, argv only, no shell. Exit 0 with no output or "yes" approves; any
 * other exit denies. The child is killed by its pid when another method answers first.
 */
import { spawn } from 'node:child_process';
import { askpassAllowed } from '../agent/confirm';
import type { PromptChannel, PromptRequest, ShownPrompt, UserAnswer } from './channel';

/** Debian's default when SSH_ASKPASS is unset (OpenSSH's _PATH_SSH_ASKPASS_DEFAULT). */
const DEFAULT_ASKPASS = '/usr/bin/ssh-askpass';
const MAX_ANSWER_BYTES = 1024;
/** After SIGTERM, a child that lingers this long gets SIGKILL. */
const KILL_GRACE_MS = 2000;

export interface AskpassShown extends ShownPrompt {
  /** The askpass child's pid (undefined when it could not be started). */
  readonly pid: number | undefined;
}

export interface AskpassOptions {
  /** The daemon's environment: SSH_ASKPASS, SSH_ASKPASS_REQUIRE, DISPLAY, WAYLAND_DISPLAY. */
  readonly env?: NodeJS.ProcessEnv;
  /** Told the pid of every askpass child started, e.g. for a test or a log line. */
  readonly onSpawn?: (pid: number) => void;
}

export class AskpassChannel implements PromptChannel {
  readonly method = 'askpass' as const;
  private readonly env: NodeJS.ProcessEnv;

  constructor(private readonly options: AskpassOptions = {}) {
    this.env = options.env ?? process.env;
  }

  /** As OpenSSH: a display is needed unless SSH_ASKPASS_REQUIRE=force; "never" forbids it. */
  available(): boolean {
    return askpassAllowed(this.env);
  }

  show(request: PromptRequest): Promise<ShownPrompt | null> {
    if (!this.available()) return Promise.resolve(null);
    const shown = runAskpass(this.env.SSH_ASKPASS || DEFAULT_ASKPASS, request.text.text, this.env);
    if (shown.pid !== undefined) this.options.onSpawn?.(shown.pid);
    return Promise.resolve(shown);
  }

  close(): void {
    /* nothing held between prompts */
  }
}

/** Starts one askpass confirmation; see the module comment for the answer rules. */
export function runAskpass(program: string, text: string, env: NodeJS.ProcessEnv): AskpassShown {
  const child = spawn(program, [text], {
    env: { ...env, SSH_ASKPASS_PROMPT: 'confirm' },
    stdio: ['ignore', 'pipe', 'ignore'],
    shell: false,
    // Its own process group, so a wrapper script's dialog goes too when it is withdrawn.
    detached: true,
  });
  const pid = child.pid;
  let withdrawn = false;
  let exited = false;
  let killTimer: NodeJS.Timeout | undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  child.stdout?.on('data', (chunk: Buffer) => {
    if (size < MAX_ANSWER_BYTES) {
      chunks.push(chunk);
      size += chunk.length;
    }
  });

  const answer = new Promise<UserAnswer | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('close', (code) => {
      exited = true;
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (withdrawn) {
        resolve(null);
        return;
      }
      const said = Buffer.concat(chunks)
        .toString('utf8')
        .replace(/\r?\n$/, '');
      resolve({ allowed: code === 0 && (said === '' || said.toLowerCase() === 'yes'), remember: false });
    });
  });

  const withdraw = (): void => {
    if (withdrawn) return;
    withdrawn = true;
    if (pid === undefined || exited) return;
    signal(pid, 'SIGTERM');
    killTimer = setTimeout(() => {
      if (!exited) signal(pid, 'SIGKILL');
    }, KILL_GRACE_MS);
    killTimer.unref();
  };
  return { pid, answer, withdraw };
}

/** The child's process group (it leads one, see `detached`), else the child alone. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
    return;
  } catch {
    /* no such group: fall back to the pid */
  }
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}
