/**
 * The destination of a bound connection (POLICY.md §1) from its session bindings
 * (session-bind@openssh.com, PROTOCOL.agent §1): the last binding is the host the signatures
 * go to, earlier ones the hops the connection was forwarded through.
 */
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

/** SHA256 fingerprint of a host key; a certificate is named by its plain key, as ssh-keygen -l does. */
export function hostKeyFingerprint(blob: Buffer): string {
  try {
    const plain = plainKeyOf(parsePublicKeyBlob(blob));
    if (plain !== undefined) return fingerprint(encodePlainPublicKey(plain));
  } catch {
    /* not a key we interpret: fingerprint the blob itself */
  }
  return fingerprint(blob);
}

/**
 * Null for an unbound connection. `forwarded`: any binding was made with is_forwarding (the
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
  return {
    hostKey: hostKeyFingerprint(last.hostKey.blob),
    names,
    host: names[0] ?? null,
    port,
    user,
    forwarded: bindings.some((b) => b.forwarded),
    via,
  };
}

/** The connection's destination with the remote user of the request being signed. */
export function withUser(d: Destination | null, user: string | null): Destination | null {
  return d === null || d.user === user ? d : { ...d, user };
}
