/**
 * Runs the daemon in this process: keyring + server + signal handling. Used by foreground
 * mode, by the detached background child, and by command mode.
 */
import type { Logger } from '../log';
import { Keyring } from '../agent/keyring';
import type { FingerprintHash } from '../keys/fingerprint';
import type { Pkcs11Options } from '../pkcs11/provider-host';
import type { SmartcardPort } from '../agent/smartcard';
import { AgentServer } from '../server/agent-server';
import type { ListenTarget } from '../server/agent-server';
import { uidPeerCheck } from '../server/peer-check';
import { hardenProcess } from './harden';

export interface RunAgentOptions {
  readonly target: ListenTarget;
  /**
   * Where the control socket (POLICY.md §5) belongs: the fd systemd passed as "control", or
   * AGENT_SOCKET.ctl. Handed through to RunningAgent.control; nothing listens on it here yet.
   */
  readonly control?: ListenTarget;
  readonly defaultLifetimeSeconds?: number;
  readonly fingerprintHash: FingerprintHash;
  readonly logger: Logger;
  /** SIGINT stops the agent in the foreground (-D/-d) but is ignored in the background. */
  readonly stopOnSigint: boolean;
  /** `-P` / `-O allow-remote-pkcs11`: how PKCS#11 providers may be added (`ssh-add -s`). */
  readonly pkcs11?: { readonly allowedProviders?: string; readonly allowRemoteAdd?: boolean };
}

export interface RunningAgent {
  readonly keyring: Keyring;
  readonly server: AgentServer;
  /** Protections that could not be applied (also logged once at warn level). */
  readonly warnings: readonly string[];
  /** Where the control server should listen (RunAgentOptions.control), if anywhere. */
  readonly control: ListenTarget | undefined;
  /** Closes the socket, removes it and its directory, drops the keys. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The PKCS#11 provider host, loaded on the first `ssh-add -s` rather than at start
 * (it brings the helper process machinery; issue 16).
 */
function lazySmartcards(options: Pkcs11Options): SmartcardPort {
  let host: SmartcardPort | undefined;
  const get = (): SmartcardPort => {
    host ??= new (require('../pkcs11/provider-host') as typeof import('../pkcs11/provider-host')).Pkcs11Providers(options);
    return host;
  };
  return {
    allowRemoteAdd: options.allowRemoteAdd ?? false,
    canonicalPath: (provider) => get().canonicalPath(provider),
    allowed: (canonicalPath) => get().allowed(canonicalPath),
    load: (canonicalPath, pin) => get().load(canonicalPath, pin),
  };
}

export async function runAgent(opts: RunAgentOptions, onExit: (code: number) => void): Promise<RunningAgent> {
  const { logger } = opts;
  const keyring = new Keyring({
    defaultLifetimeSeconds: opts.defaultLifetimeSeconds,
    fingerprintHash: opts.fingerprintHash,
    logger,
    smartcards: lazySmartcards({ ...opts.pkcs11, logger }),
  });
  const protections = hardenProcess();
  for (const w of protections.warnings) logger.warn(w);
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const peerCheck = protections.libc !== undefined && uid !== undefined ? uidPeerCheck(protections.libc, uid) : undefined;
  const server = new AgentServer(peerCheck === undefined ? { agent: keyring, logger } : { agent: keyring, logger, peerCheck });
  await server.listen(opts.target);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const [sig, fn] of handlers) process.off(sig, fn);
      keyring.clear();
      await server.close();
    })();
    return stopping;
  };
  const exitOn = (sig: NodeJS.Signals) => (): void => {
    logger.info({ signal: sig }, 'shutting down');
    void stop().then(() => onExit(0));
  };
  const handlers: Array<[NodeJS.Signals, () => void]> = [
    ['SIGTERM', exitOn('SIGTERM')],
    ['SIGHUP', exitOn('SIGHUP')],
    ['SIGINT', opts.stopOnSigint ? exitOn('SIGINT') : () => undefined],
    // OpenSSH >= 10.0: SIGUSR1 drops every key and keeps serving.
    [
      'SIGUSR1',
      () => {
        keyring.clear();
        logger.info('SIGUSR1: all identities removed');
      },
    ],
  ];
  for (const [sig, fn] of handlers) process.on(sig, fn);
  const where = (t: ListenTarget): string => (t.kind === 'fd' ? `fd ${t.fd}` : t.path);
  logger.info({ socket: where(opts.target), control: opts.control === undefined ? undefined : where(opts.control) }, 'listening');
  return { keyring, server, stop, warnings: protections.warnings, control: opts.control };
}
