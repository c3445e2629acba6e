/**
 * The destination of a bound connection (POLICY.md §1) from its session bindings
 * (session-bind@openssh.com, PROTOCOL.agent §1): the last binding is the host the signatures
 * go to, earlier ones the hops the connection was forwarded through.
 */
import { rememberBounded } from '../bounded-map';
import { fingerprint } from '../keys/fingerprint';
import { encodePlainPublicKey, parsePublicKeyBlob, plainKeyOf } from '../protocol/public-key';
import type { ProvenNames } from './known-hosts';
import type { Destination } from './types';

/** Names for one bound host key blob (a KnownHostsResolver with the connection's candidates). */
export type HostKeyNamer = (hostKeyBlob: Buffer) => ProvenNames;

/** One binding as the agent records it (agent/session.ts SessionBinding satisfies this). */
export interface BoundHop {
  readonly hostKey: { readonly blob: Buffer };
  readonly forwarded: boolean;
}

/**
 * Every connection `ssh` makes to a host binds the same host key and, names being proven the
 * same way, builds an equal destination. Equal destinations are one object (interned), and
 * host key fingerprints are remembered by blob: what is cached by destination object (the
 * audit record's JSON, the rules' list selection, a connection's decisions) then holds from
 * one connection to the next, instead of being made again for each new connection.
 */
const CACHE_LIMIT = 256;
/**
 * Longer host key blobs and destination keys are not kept: a local client chooses the remote
 * user (from the userauth request it asks to sign) and can bind a large certificate, and the
 * cache must not hold 256 of those for the agent's lifetime.
 */
const MAX_CACHED_LENGTH = 4096;
const fingerprints = new Map<string, string>();
const interned = new Map<string, Destination>();

/** SHA256 fingerprint of a host key; a certificate is named by its plain key, as ssh-keygen -l does. */
export function hostKeyFingerprint(blob: Buffer): string {
  // A host certificate can be large (up to a frame): only blobs of a usual size are kept.
  if (blob.length > MAX_CACHED_LENGTH) return fingerprintOfHostKey(blob);
  const id = blob.toString('latin1');
  let fp = fingerprints.get(id);
  if (fp === undefined) fp = fingerprintOfHostKey(blob);
  rememberBounded(fingerprints, id, fp, CACHE_LIMIT);
  return fp;
}

function fingerprintOfHostKey(blob: Buffer): string {
  try {
    const plain = plainKeyOf(parsePublicKeyBlob(blob));
    if (plain !== undefined) return fingerprint(encodePlainPublicKey(plain));
  } catch {
    /* not a key we interpret: fingerprint the blob itself */
  }
  return fingerprint(blob);
}

/** The one object for destinations equal to `d` in every field (strings length-prefixed). */
function intern(d: Destination): Destination {
  // Measured before the key is built: a long user would make a long key for nothing.
  // (8: the length prefix and separator of each part, generously.)
  let size = (d.user?.length ?? 0) + 8;
  for (const n of d.names) size += n.length + 8;
  for (const v of d.via) size += v.length + 8;
  if (size > MAX_CACHED_LENGTH) return d;
  let id = `${d.hostKey} ${d.port ?? '-'} ${d.forwarded ? 1 : 0} ${d.user === null ? '-' : `${d.user.length}:${d.user}`} ${d.names.length}`;
  for (const n of d.names) id += ` ${n.length}:${n}`;
  for (const v of d.via) id += ` ${v.length}:${v}`;
  const known = interned.get(id) ?? d;
  rememberBounded(interned, id, known, CACHE_LIMIT);
  return known;
}

/**
 * Null for an unbound connection. `forwarded`: some binding was made with is_forwarding (the
 * request reached us through `ssh -A`). `via`: each earlier hop's first proven name, else
 * its fingerprint. `user` is per request (withUser).
 */
export function buildDestination(
  bindings: readonly BoundHop[],
  nameOf: HostKeyNamer,
  user: string | null = null,
): Destination | null {
  const last = bindings[bindings.length - 1];
  if (last === undefined) return null;
  const { names, port } = nameOf(last.hostKey.blob);
  const via: string[] = [];
  for (let i = 0; i < bindings.length - 1; i++) {
    const blob = bindings[i].hostKey.blob;
    via.push(nameOf(blob).names[0] ?? hostKeyFingerprint(blob));
  }
  return intern({
    hostKey: hostKeyFingerprint(last.hostKey.blob),
    names,
    host: names[0] ?? null,
    port,
    user,
    forwarded: bindings.some((b) => b.forwarded),
    via,
  });
}

/** The connection's destination with the remote user of the request being signed. */
export function withUser(d: Destination | null, user: string | null): Destination | null {
  return d === null || d.user === user ? d : intern({ ...d, user });
}
