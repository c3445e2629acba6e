/**
 * The agent's side of PKCS#11: resolves and allowlists provider paths, and runs each loaded
 * provider in its own helper process (helper-main.ts) so that the module — foreign native
 * code that may block for seconds on a touch or a PIN pad, or crash — never runs in the
 * agent's event loop. Implements the keyring's SmartcardPort (agent/smartcard.ts).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log';
import type { LoadedProvider, ProviderKey, SmartcardPort } from '../agent/smartcard';
import { AgentFailureError } from '../errors';
import { matchPatternList } from '../match';
import { FrameDecoder } from '../protocol/frame';
import { decodeHelperReply, encodeHelperRequest } from './helper-wire';
import type { HelperReply, HelperRequest } from './helper-wire';

/** ssh-agent.c DEFAULT_ALLOWED_PROVIDERS. */
export const DEFAULT_ALLOWED_PROVIDERS = '/usr/lib*/*,/usr/local/lib*/*';

export interface Pkcs11Options {
  /** `-P`: OpenSSH pattern-list of allowed provider paths (after realpath). */
  readonly allowedProviders?: string;
  /** `-O allow-remote-pkcs11`. */
  readonly allowRemoteAdd?: boolean;
  readonly logger?: Logger;
  /** The helper script (tests); default: helper-main.js beside this file. */
  readonly helperScript?: string;
}

interface Waiter {
  resolve(reply: HelperReply): void;
  reject(err: Error): void;
}

/** One helper process: requests go out in order, replies come back in the same order. */
class HelperProcess {
  private readonly waiters: Waiter[] = [];
  private readonly frames = new FrameDecoder();
  private readonly lostListeners: Array<() => void> = [];
  private closing = false;
  private gone = false;

  constructor(
    private readonly child: ChildProcess,
    private readonly channel: Duplex,
  ) {
    channel.on('data', (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = this.frames.push(chunk);
      } catch {
        this.kill();
        return;
      }
      for (const body of bodies) {
        const w = this.waiters.shift();
        if (w === undefined) continue;
        try {
          w.resolve(decodeHelperReply(body));
        } catch (err) {
          w.reject(err instanceof Error ? err : new Error('bad helper reply'));
        }
      }
    });
    channel.on('error', () => this.kill());
    child.on('exit', () => this.exited());
    child.on('error', () => this.exited());
  }

  request(req: HelperRequest): Promise<HelperReply> {
    if (this.gone) return Promise.reject(new AgentFailureError('provider helper is gone'));
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      const frame = encodeHelperRequest(req);
      // A LOAD frame carries the PIN: wipe our copy once the pipe has taken it.
      this.channel.write(frame, () => {
        if (req.type === 'load') frame.fill(0);
      });
    });
  }

  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  close(): void {
    this.closing = true;
    this.kill();
  }

  private kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    this.channel.destroy();
  }

  private exited(): void {
    if (this.gone) return;
    this.gone = true;
    this.channel.destroy();
    for (const w of this.waiters.splice(0)) w.reject(new AgentFailureError('provider helper exited'));
    if (!this.closing) for (const l of this.lostListeners.splice(0)) l();
  }
}

class HelperProvider implements LoadedProvider {
  constructor(
    readonly path: string,
    readonly keys: readonly ProviderKey[],
    private readonly helper: HelperProcess,
  ) {}

  async sign(blob: Buffer, data: Buffer, flags: number): Promise<Buffer> {
    const reply = await this.helper.request({ type: 'sign', blob, data, flags });
    if (reply.type !== 'signature')
      throw new AgentFailureError(
        reply.type === 'failure' ? `token signature failed: ${reply.reason}` : 'unexpected helper reply',
      );
    return reply.signature;
  }

  close(): void {
    this.helper.close();
  }

  onLost(listener: () => void): void {
    this.helper.onLost(listener);
  }
}

export class Pkcs11Providers implements SmartcardPort {
  readonly allowRemoteAdd: boolean;
  private readonly allowlist: string;
  private readonly helperScript: string;

  constructor(private readonly options: Pkcs11Options = {}) {
    this.allowlist = options.allowedProviders ?? DEFAULT_ALLOWED_PROVIDERS;
    this.allowRemoteAdd = options.allowRemoteAdd ?? false;
    this.helperScript = options.helperScript ?? join(__dirname, 'helper-main.js');
  }

  async canonicalPath(provider: string): Promise<string> {
    try {
      return await realpath(provider);
    } catch (err) {
      throw new AgentFailureError(`provider path does not resolve: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }

  allowed(canonicalPath: string): boolean {
    const ok = matchPatternList(canonicalPath, this.allowlist) === 1;
    if (!ok) this.options.logger?.info({ provider: canonicalPath }, 'refusing PKCS#11 provider: not in the allowlist (-P)');
    return ok;
  }

  async load(canonicalPath: string, pin: Buffer): Promise<LoadedProvider> {
    // The agent's environment passes on (a module reads its own configuration from it, e.g.
    // SOFTHSM2_CONF); the PIN does not: it goes over the pipe only.
    const child = spawn(process.execPath, [this.helperScript], {
      stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
      env: process.env,
    });
    const channel = child.stdio[3] as Duplex | null;
    if (channel === null) {
      child.kill('SIGKILL');
      throw new AgentFailureError('cannot start the provider helper');
    }
    const helper = new HelperProcess(child, channel);
    let reply: HelperReply;
    try {
      reply = await helper.request({ type: 'load', path: canonicalPath, pin });
    } catch (err) {
      helper.close();
      throw err instanceof AgentFailureError ? err : new AgentFailureError('provider helper failed');
    }
    if (reply.type !== 'keys') {
      helper.close();
      const reason = reply.type === 'failure' ? reply.reason : 'unexpected helper reply';
      this.options.logger?.debug({ provider: canonicalPath, reason }, 'PKCS#11 provider gave no keys');
      throw new AgentFailureError(`provider gave no keys: ${reason}`);
    }
    return new HelperProvider(
      canonicalPath,
      reply.keys.map((k) => ({ blob: k.blob, label: k.label })),
      helper,
    );
  }
}
