/**
 * The request context of ../shared/POLICY.md §1: who asks (process), for which host
 * (destination) and for what (purpose). Plain data, shared by every layer that judges or
 * records a request; field names are the audit log's JSON names (POLICY.md §6).
 *
 * Layering: context/ sits just above protocol/ and keys/ and below agent/. The gate in
 * agent/ reads these values; the readers that fill them (/proc, known_hosts) live here too.
 */

/** The peer process behind a connection. Unknown fields are null, never guessed. */
export interface ProcessInfo {
  readonly pid: number | null;
  readonly uid: number | null;
  /** /proc/PID/exe */
  readonly exe: string | null;
  /** /proc/PID/cmdline split at NUL */
  readonly argv: readonly string[] | null;
  /** systemd unit or scope from /proc/PID/cgroup, when there is one */
  readonly unit: string | null;
  /** exe paths of up to 4 ancestors, nearest first; null when unknown */
  readonly parents: readonly string[] | null;
}

/** Where a bound connection's signatures go (session-bind@openssh.com, POLICY.md §1). */
export interface Destination {
  /** SHA256 fingerprint of the bound (last hop's) host key. */
  readonly hostKey: string;
  /** Names a known_hosts line pairs with that key. */
  readonly names: readonly string[];
  /** names[0], or null when no name is proven. */
  readonly host: string | null;
  /** When the known_hosts entry has [host]:port form. */
  readonly port: number | null;
  /** Remote user of the userauth request being signed (per request), else null. */
  readonly user: string | null;
  /** Bound with is_forwarding: reached us through `ssh -A`. */
  readonly forwarded: boolean;
  /** One string per earlier hop, first hop first: its host, or its host key fingerprint. */
  readonly via: readonly string[];
}

/** `login`, `sign:NAMESPACE` (SSHSIG), or `other`. */
export type Purpose = 'login' | `sign:${string}` | 'other';

/** Everything one sign or list request is judged by. */
export interface RequestFacts {
  readonly process: ProcessInfo | null;
  readonly destination: Destination | null;
  /** Sign requests only. */
  readonly purpose?: Purpose;
}

/** What known_hosts proves about one host key (POLICY.md §1, key → names). */
export interface HostNames {
  readonly names: readonly string[];
  /** When the proving line has `[host]:port` form, else null. */
  readonly port: number | null;
}

/**
 * Labels a bound host key (its wire blob) with the names known_hosts proves for it; `process`
 * is the peer, whose `ssh` argv may supply candidates for hashed entries. Synchronous and
 * answered from memory: it runs when a destination is first computed after a session-bind.
 * No proven name: `{ names: [], port: null }`.
 */
export type DestinationNamer = (hostKey: Buffer, process: ProcessInfo | null) => HostNames;
