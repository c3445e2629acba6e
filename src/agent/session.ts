/**
 * One agent connection as the agent sees it, made once when the connection opens: the peer
 * behind it, what it has bound with session-bind@openssh.com, and the request context of
 * ../shared/POLICY.md §1 (process, destination) that the gate judges every list and sign by.
 * Every per-request Agent method takes it explicitly.
 */
import type { Destination, DestinationNamer, HostNames, ProcessInfo } from '../context/types';
import type { ProcessSource } from '../context/process';
import type { KeyView, PolicyDecision } from './ports';
import { buildDestination, withUser } from '../context/destination';
import { SessionBindings } from './session-bindings';

/** SO_PEERCRED (or the platform's equivalent), when the transport can tell. */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
}

export interface AgentSessionOptions {
  /** For logs; unique per connection within a server. In-process sessions use 0. */
  readonly connectionId: number;
  readonly peer?: PeerCredentials | null;
  /** What is known of the peer process; default: pid and uid from `peer`, the rest null. */
  readonly process?: ProcessInfo | null;
  /** Where to read the peer process from when first asked (takes precedence over `process`). */
  readonly processSource?: ProcessSource;
  /** Names for bound host keys (known_hosts); default: none proven. */
  readonly namer?: DestinationNamer;
}

const NO_HOST_NAMES: HostNames = Object.freeze({ names: Object.freeze([]), port: null });

/** The default DestinationNamer: no name is ever proven, destinations carry only fingerprints. */
export const noDestinationNames: DestinationNamer = () => NO_HOST_NAMES;

function processFromPeer(peer: PeerCredentials | null): ProcessInfo | null {
  if (peer === null) return null;
  return { pid: peer.pid, uid: peer.uid, exe: null, argv: null, unit: null, parents: null };
}

export interface RememberedDecision {
  readonly generation: number;
  readonly destination: Destination | null;
  readonly purpose: string;
  readonly decision: PolicyDecision;
}

export class AgentSession {
  readonly connectionId: number;
  readonly peer: PeerCredentials | null;
  private knownProcess: ProcessInfo | null | undefined;
  private processSource: ProcessSource | undefined;
  /**
   * The gate's last policy decision for each key used on this connection, reused while the
   * configuration, the destination object and the purpose are the same (Gate.decideSign).
   */
  private decisions: Map<KeyView, RememberedDecision> | undefined;
  /** session-bind@openssh.com bindings, hop by hop (destination constraints read these). */
  readonly bindings = new SessionBindings();
  private readonly namer: DestinationNamer;
  /** Made on first use: most connections never have a question pending. */
  private closer: AbortController | undefined;
  private isClosed = false;
  /** Bindings only ever grow, so their count says whether the cached destination is current. */
  private destinationBindings = 0;
  private cachedDestination: Destination | null = null;
  /** destinationFor's last answer and the bound destination it was made from. */
  private userDestination: Destination | undefined;
  private userDestinationBase: Destination | null = null;

  constructor(options: AgentSessionOptions) {
    this.connectionId = options.connectionId;
    this.peer = options.peer ?? null;
    this.processSource = options.processSource;
    if (this.processSource === undefined) {
      this.knownProcess = options.process !== undefined ? options.process : processFromPeer(this.peer);
    }
    this.namer = options.namer ?? noDestinationNames;
  }

  /** A session for in-process use (tests, embedding): no peer, unbound, no names. */
  static inProcess(options: Partial<AgentSessionOptions> = {}): AgentSession {
    return new AgentSession({ connectionId: 0, ...options });
  }

  /** Made on first use: a connection that only lists never has one. */
  get policyDecisions(): Map<KeyView, RememberedDecision> {
    this.decisions ??= new Map();
    return this.decisions;
  }

  /** The peer process (POLICY.md §1), read from its source on first use. */
  get process(): ProcessInfo | null {
    if (this.knownProcess === undefined) {
      this.knownProcess = this.processSource?.read() ?? null;
      this.processSource = undefined;
    }
    return this.knownProcess;
  }

  /** Aborted when the connection is gone (pending approvals for it are then withdrawn). */
  get closed(): AbortSignal {
    if (this.closer === undefined) {
      this.closer = new AbortController();
      if (this.isClosed) this.closer.abort();
    }
    return this.closer.signal;
  }

  close(): void {
    this.isClosed = true;
    this.processSource?.release();
    this.processSource = undefined;
    this.closer?.abort();
  }

  /**
   * Where this connection's signatures go (POLICY.md §1): null while unbound; `user` is
   * always null here (it belongs to one sign request: see destinationFor). Computed once per
   * new binding, so a list or sign costs a field read.
   */
  destination(): Destination | null {
    const path = this.bindings.bindings;
    if (path.length === 0) return null;
    if (path.length !== this.destinationBindings) {
      this.cachedDestination = buildDestination(path, (blob) => this.namer(blob, this.process));
      this.destinationBindings = path.length;
    }
    return this.cachedDestination;
  }

  /**
   * The destination with the remote user of one login. The same object while the binding and
   * the user stay the same, so a connection's signatures share it (the audit writer caches
   * its JSON per object).
   */
  destinationFor(user: string | null): Destination | null {
    const bound = this.destination();
    if (user === null || bound === null) return bound;
    if (this.userDestination === undefined || this.userDestinationBase !== bound || this.userDestination.user !== user) {
      this.userDestination = withUser(bound, user)!;
      this.userDestinationBase = bound;
    }
    return this.userDestination;
  }
}
