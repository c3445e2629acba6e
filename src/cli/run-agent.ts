/**
 * Runs the daemon in this process: keyring + server + signal handling. Used by foreground
 * mode, by the detached background child, and by command mode.
 */
import type { Logger } from '../log';
import type { Socket } from 'node:net';
import { Keyring } from '../agent/keyring';
import type { FingerprintHash } from '../keys/fingerprint';
import type { Pkcs11Options } from '../pkcs11/provider-host';
import type { SmartcardPort } from '../agent/smartcard';
import { AgentServer } from '../server/agent-server';
import type { ListenTarget } from '../server/agent-server';
import { socketFd, uidPeerCheck } from '../server/peer-check';
import { ControlServer, registerCoreCommands } from '../server/control-socket';
import { ensurePrivateDir, isWindowsPipe } from '../stream/socket-path';
import { DaemonControl } from './daemon-control';
import type { PolicyState } from './daemon-control';
import type { JsonValue } from '../protocol/control';
import { KnownHostsResolver } from '../context/known-hosts';
import { knownHostsNamer } from '../context/namer';
import { peerProcessSource } from '../context/process';
import type { PeerIdentity } from '../context/process';
import type { DestinationNamer, ProcessInfo } from '../context/types';
import { literalHostNames } from '../policy/rules';
import { SwappablePolicy } from '../policy/swappable-policy';
import { hardenProcess } from './harden';
import { PendingApprovals } from '../approvals/pending';
import { approvalCommands } from '../approvals/handlers';
import { ConfiguredAuditSink, configRecord } from '../audit/configured-sink';
import type { Config } from '../policy/config-types';

export interface RunAgentOptions {
  readonly target: ListenTarget;
  /**
   * Where the control socket (POLICY.md §5) belongs: the fd systemd passed as "control", or
   * AGENT_SOCKET.ctl. The control server listens there when `policy` is given too.
   */
  readonly control?: ListenTarget;
  readonly defaultLifetimeSeconds?: number;
  readonly fingerprintHash: FingerprintHash;
  readonly logger: Logger;
  /** SIGINT stops the agent in the foreground (-D/-d) but is ignored in the background. */
  readonly stopOnSigint: boolean;
  /** `-P` / `-O allow-remote-pkcs11`: how PKCS#11 providers may be added (`ssh-add -s`). */
  readonly pkcs11?: { readonly allowedProviders?: string; readonly allowRemoteAdd?: boolean };
  /** The validated config and its registered keys (POLICY.md §2, §3); `path` is `--config`. */
  readonly policy?: { readonly path: string | undefined; readonly state: PolicyState; readonly env: NodeJS.ProcessEnv };
}

export interface RunningAgent {
  readonly keyring: Keyring;
  /** The audit log (POLICY.md §6); undefined without a policy state. */
  readonly audit: ConfiguredAuditSink | undefined;
  /** Pending approvals and grants (POLICY.md §4); undefined without a policy state. */
  readonly approvals: PendingApprovals | undefined;
  readonly server: AgentServer;
  /** The control socket's commands and the policy state, when a control socket listens. */
  readonly commands: DaemonControl | undefined;
  /** Protections that could not be applied (also logged once at warn level). */
  readonly warnings: readonly string[];
  /** Where the control server should listen (RunAgentOptions.control), if anywhere. */
  readonly control: ListenTarget | undefined;
  /** Closes the socket, removes it and its directory, drops the keys. Idempotent. */
  stop(): Promise<void>;
}

function destinationNamer(state: PolicyState, env: NodeJS.ProcessEnv): DestinationNamer {
  const resolver = new KnownHostsResolver({ extraFiles: state.config.agent.knownHosts, ...(env.HOME ? { home: env.HOME } : {}) });
  resolver.preload();
  return knownHostsNamer(resolver, literalHostNames(state.config));
}

function newApprovals(
  config: Config,
  env: NodeJS.ProcessEnv,
  audit: ConfiguredAuditSink | undefined,
  logger: Logger,
): PendingApprovals {
  return new PendingApprovals({
    prompt: config.agent.prompt,
    promptTimeoutMs: config.agent.promptTimeoutSeconds * 1000,
    rememberMs: config.agent.rememberSeconds * 1000,
    env,
    logger,
    // No config file: confirm behaves as OpenSSH's (no askpass, no approval) — POLICY.md §2.
    denyWhenUnshown: config.file === null,
    ...(audit === undefined ? {} : { audit }),
  });
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

/** A listener as a path for logs and `tsagent status`: its socket file, else its descriptor. */
function where(t: ListenTarget): string {
  return t.kind === 'path' ? t.path : (t.boundAt?.path ?? `fd ${t.fd}`);
}

export async function runAgent(opts: RunAgentOptions, onExit: (code: number) => void): Promise<RunningAgent> {
  const { logger } = opts;
  // With a config, its rules judge every list and signature (POLICY.md §2); reload swaps them.
  const policy = opts.policy === undefined ? undefined : new SwappablePolicy(opts.policy.state.policy);
  const config = opts.policy?.state.config;
  // The audit log is written with or without a config file (POLICY.md §2); opened on first record.
  const audit = config === undefined ? undefined : new ConfiguredAuditSink(config.audit, (m) => logger.warn(m));
  audit?.record(
    configRecord('allow', config?.file === null || config === undefined ? 'no config file: defaults' : `loaded ${config.file}`),
  );
  // Confirmations (rule `confirm`, key `confirm`, `ssh-add -c`) become pending approvals shown
  // by every method of `prompt` at once, the terminal always among them (POLICY.md §4).
  const approvals = config === undefined ? undefined : newApprovals(config, opts.policy!.env, audit, logger);
  const protections = hardenProcess();
  const keyring = new Keyring({
    defaultLifetimeSeconds: opts.defaultLifetimeSeconds,
    fingerprintHash: opts.fingerprintHash,
    logger,
    smartcards: lazySmartcards({ ...opts.pkcs11, logger }),
    // Memory a burst (a hostile client's unread replies, dropped keys) left free in glibc's
    // heap goes back to the kernel after each collection (issue 18).
    afterCollect: () => void protections.libc?.trimFreedMemory?.(),
    ...(policy === undefined ? {} : { policy }),
    ...(audit === undefined ? {} : { audit }),
    ...(approvals === undefined ? {} : { approvals }),
  });
  for (const w of protections.warnings) logger.warn(w);
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const peerCheck = protections.libc !== undefined && uid !== undefined ? uidPeerCheck(protections.libc, uid) : undefined;
  // With a config: who asks (/proc) and where to (known_hosts, with the config's literal host
  // names as candidates for hashed lines), POLICY.md §1; the namer is rebuilt on reload.
  let namer: DestinationNamer | undefined =
    opts.policy === undefined ? undefined : destinationNamer(opts.policy.state, opts.policy.env);
  const context =
    namer === undefined
      ? {}
      : {
          namer: (hostKey: Buffer, process: ProcessInfo | null) => namer!(hostKey, process),
          // Pinned by a pidfd where the kernel gives one (SO_PEERPIDFD, Linux 6.5+), so a
          // recycled pid can never lend another process's facts (POLICY.md §1).
          describePeer: (peer: PeerIdentity | null, sock: Socket) => {
            if (peer === null) return undefined;
            const fd = socketFd(sock);
            const pidfd = fd === undefined ? undefined : protections.libc?.peerPidfd?.(fd);
            return peerProcessSource(peer, pidfd === undefined ? {} : { pidfd });
          },
        };
  const server = new AgentServer({
    agent: keyring,
    logger,
    // glibc keeps what a burst of requests freed (OpenSSL's decoders, read buffers) unless
    // asked: given back once the agent has been quiet for a second (~2 ms for malloc_trim).
    onQuiet: () => void protections.libc?.trimFreedMemory?.(),
    ...context,
    ...(peerCheck === undefined ? {} : { peerCheck }),
    ...(audit === undefined ? {} : { audit }),
  });
  let controlServer: ControlServer | undefined;
  let commands: DaemonControl | undefined;
  let target = opts.target;
  const ctl = opts.control;
  if (ctl !== undefined && opts.policy !== undefined && !(ctl.kind === 'path' && isWindowsPipe(ctl.path))) {
    controlServer = new ControlServer(peerCheck === undefined ? { logger } : { logger, peerCheck });
    commands = new DaemonControl({
      keyring,
      socket: where(opts.target),
      control: where(ctl),
      configPath: opts.policy.path,
      env: opts.policy.env,
      initial: opts.policy.state,
      logger,
      onReload: (next: PolicyState) => {
        policy?.swap(next.policy);
        namer = destinationNamer(next, opts.policy!.env);
        audit?.swap(next.config.audit);
        audit?.record(
          configRecord(
            'allow',
            next.config.file === null ? 'reloaded: no config file, defaults' : `reloaded ${next.config.file}`,
          ),
        );
      },
      onReloadFailed: (err: Error) => audit?.record(configRecord('fail', `reload failed: ${err.message}`)),
    });
    registerCoreCommands(controlServer, commands);
    if (approvals !== undefined) {
      for (const [name, handler] of Object.entries(approvalCommands(approvals)))
        controlServer.register(name, (args) => handler(args) as JsonValue);
    }
    // The control socket first: whoever sees the agent socket can rely on its .ctl being there.
    // Making the directory here must not hide from the agent server that this agent made it
    // (it removes only a directory it created).
    if (target.kind === 'path' && target.ownedDir !== undefined && ensurePrivateDir(target.ownedDir))
      target = { ...target, dirCreated: true };
    await controlServer.listen(ctl);
    for (const w of opts.policy.state.warnings) logger.warn({ reason: w }, 'registered key not loaded');
  }
  try {
    await server.listen(target);
  } catch (err) {
    await controlServer?.close();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const [sig, fn] of handlers) process.off(sig, fn);
      approvals?.close();
      keyring.clear();
      commands?.state.registered.dropAll();
      await controlServer?.close();
      await server.close();
      audit?.close();
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
        commands?.state.registered.dropAll();
        logger.info('SIGUSR1: all identities removed');
      },
    ],
  ];
  for (const [sig, fn] of handlers) process.on(sig, fn);
  logger.info({ socket: where(opts.target), control: opts.control === undefined ? undefined : where(opts.control) }, 'listening');
  return { keyring, audit, approvals, server, stop, warnings: protections.warnings, control: opts.control, commands };
}
