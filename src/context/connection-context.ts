/**
 * The request context of one connection, as the server and the gate use it (POLICY.md §1):
 * the peer process read once at accept, the destination rebuilt only when a new binding
 * arrives, the user and purpose per sign request.
 */
import { buildDestination, withUser } from './destination';
import type { BoundHop } from './destination';
import type { HostCandidate } from './host-patterns';
import type { NameResolver } from './known-hosts';
import { readPeerProcess } from './process';
import type { PeerIdentity } from './process';
import { signPurpose } from './purpose';
import { configCandidates, peerCandidates } from './ssh-argv';
import type { Destination, ProcessInfo, Purpose } from './types';

export interface ConnectionContextOptions {
  readonly resolver: Pick<NameResolver, 'namesFor'>;
  /** The config's literal host names (POLICY.md §1: candidates for hashed entries). */
  readonly configNames?: readonly string[];
}

export class ConnectionContext {
  readonly process: ProcessInfo | null;
  private readonly candidates: readonly HostCandidate[];
  private boundCount = -1;
  private dest: Destination | null = null;
  /** The last per-user destination: the same object while nothing changes, so the audit log can reuse its JSON. */
  private withUserCache: { base: Destination | null; user: string | null; dest: Destination | null } | undefined;

  /**
   * Reads the peer at accept. `peer` is SO_PEERCRED's (undefined when the platform gave
   * none); `pidfd` (Libc.peerPidfd) is taken over and closed.
   */
  constructor(
    peer: PeerIdentity | undefined,
    private readonly opts: ConnectionContextOptions,
    pidfd?: number,
  ) {
    this.process = peer === undefined ? null : readPeerProcess(peer, pidfd !== undefined ? { pidfd } : {});
    this.candidates = [...peerCandidates(this.process), ...configCandidates(opts.configNames ?? [])];
  }

  /** The destination for the connection's bindings so far (they only grow), without a user. */
  destination(bindings: readonly BoundHop[]): Destination | null {
    if (bindings.length !== this.boundCount) {
      this.boundCount = bindings.length;
      this.dest = buildDestination(bindings, this.opts.resolver, this.candidates);
    }
    return this.dest;
  }

  /** Purpose and destination (with the login's remote user) of one sign request. Never throws. */
  signRequest(bindings: readonly BoundHop[], data: Buffer): { purpose: Purpose; destination: Destination | null } {
    const p = signPurpose(data);
    const base = this.destination(bindings);
    let c = this.withUserCache;
    if (c === undefined || c.base !== base || c.user !== p.user) {
      c = { base, user: p.user, dest: withUser(base, p.user) };
      this.withUserCache = c;
    }
    return { purpose: p.purpose, destination: c.dest };
  }
}
