/**
 * Destination constraints (`ssh-add -h`; OpenSSH PROTOCOL.agent §2, ssh-agent.c
 * identity_permitted / permitted_by_dest_constraints / process_sign_request2): a restricted
 * key is only visible, removable, re-addable and usable along a permitted path of hosts.
 */
import { ConstraintError } from '../errors';
import { certificateSignatureValid, hostCertificateValidFor } from '../keys/certificate';
import { keyTypeClass, keysEqual, parsedKey } from '../keys/key-equality';
import type { ParsedKey } from '../keys/key-equality';
import { matchPattern } from '../match';
import type { DestinationConstraint, DestinationHop } from '../protocol/destination';
import { parseUserauthRequest } from '../protocol/userauth';
import { buffersEqual } from './session-bindings';
import type { SessionBindings } from './session-bindings';

/** ssh-agent.c AGENT_MAX_DEST_CONSTRAINTS. */
export const MAX_DESTINATION_CONSTRAINTS = 1024;
/** ssh-agent.c AGENT_USER_CONSTRAINT_MAX_LEN. */
export const MAX_USER_PATTERN_LENGTH = 256;

interface HopKey extends ParsedKey {
  readonly isCa: boolean;
}

export interface Hop {
  /** undefined: every user (only meaningful on the to-hop). */
  readonly user: string | undefined;
  /** undefined: the origin, the host running the agent (from-hop only). */
  readonly hostname: string | undefined;
  readonly keys: readonly HopKey[];
}

export interface DestinationRule {
  readonly from: Hop;
  readonly to: Hop;
}

function hop(h: DestinationHop): Hop {
  if (h.reserved.length !== 0) throw new ConstraintError('destination hop has unsupported extensions');
  if (Buffer.byteLength(h.user) > MAX_USER_PATTERN_LENGTH) throw new ConstraintError('user match pattern too long');
  const keys = h.keys.map((k): HopKey => {
    let p: ParsedKey;
    try {
      p = parsedKey(Buffer.from(k.blob));
    } catch (err) {
      throw new ConstraintError('malformed host key in destination constraint', { cause: err });
    }
    if (p.key.kind === 'other') throw new ConstraintError('unsupported host key type in destination constraint');
    if (p.key.kind === 'certificate' && !certificateSignatureValid(p.key)) {
      throw new ConstraintError('invalid certificate in destination constraint');
    }
    return { ...p, isCa: k.isCa };
  });
  return { user: h.user === '' ? undefined : h.user, hostname: h.hostname === '' ? undefined : h.hostname, keys };
}

/** Validates constraints as ssh-agent.c parse_dest_constraint does; any flaw refuses the key. */
export function destinationRules(constraints: readonly DestinationConstraint[]): DestinationRule[] {
  if (constraints.length > MAX_DESTINATION_CONSTRAINTS) throw new ConstraintError('too many destination constraints');
  return constraints.map((c) => {
    if (c.reserved.length !== 0) throw new ConstraintError('destination constraint has unsupported extensions');
    const from = hop(c.from);
    const to = hop(c.to);
    if ((from.hostname === undefined) !== (from.keys.length === 0) || from.user !== undefined) {
      throw new ConstraintError('inconsistent "from" in destination constraint');
    }
    if (to.hostname === undefined || to.keys.length === 0) throw new ConstraintError('incomplete "to" in destination constraint');
    return { from, to };
  });
}

/** match_key_hop(): is `key` one of the hop's keys, or a host certificate by one of its CAs? */
function matchesHop(key: ParsedKey, h: Hop): boolean {
  for (const spec of h.keys) {
    if (key.key.kind !== 'certificate') {
      if (!spec.isCa && keysEqual(key, spec)) return true;
      continue;
    }
    if (!spec.isCa) continue;
    if (!keysEqual(parsedKey(key.key.signatureKey), spec)) continue;
    if (hostCertificateValidFor(key.key, h.hostname ?? '(ORIGIN)')) return true;
  }
  return false;
}

/** permitted_by_dest_constraints(): does some rule allow the hop from `from` to `to` (as `user`)? */
function permittedHop(
  rules: readonly DestinationRule[],
  from: ParsedKey | undefined,
  to: ParsedKey | undefined,
  user: string | undefined,
): boolean {
  return rules.some((r) => {
    if (from === undefined) {
      if (r.from.hostname !== undefined || r.from.keys.length !== 0) return false;
    } else if (!matchesHop(from, r.from)) {
      return false;
    }
    if (to !== undefined && !matchesHop(to, r.to)) return false;
    if (r.to.user !== undefined && user !== undefined && !matchPattern(user, r.to.user)) return false;
    return true;
  });
}

/**
 * identity_permitted(): may a key with `rules` be seen/used on a connection with `session`?
 * `user` is given only for signature requests (the target user of the userauth request).
 */
export function identityPermitted(rules: readonly DestinationRule[], session: SessionBindings, user?: string): boolean {
  if (rules.length === 0) return true;
  const bindings = session.bindings;
  if (session.bindAttempted && bindings.length === 0) return false; // a bind failed: trust nothing
  if (bindings.length === 0) return true; // local use
  let from: ParsedKey | undefined;
  for (let i = 0; i < bindings.length; i++) {
    const b = bindings[i];
    const last = i === bindings.length - 1;
    if (last) {
      // Signing happens only at the final hop, and never on one bound for forwarding.
      if (b.forwarded && user !== undefined) return false;
    } else if (!b.forwarded) {
      return false; // forwarding through a hop that was bound for authentication
    }
    if (!permittedHop(rules, from, b.hostKey, last ? user : undefined)) return false;
    from = b.hostKey;
  }
  // Listing through a forwarding: only show keys usable somewhere beyond the last host.
  const last = bindings[bindings.length - 1];
  if (last.forwarded && user === undefined && !permittedHop(rules, last.hostKey, undefined, undefined)) return false;
  return true;
}

/**
 * process_sign_request2() for a restricted key: the connection must be bound, the data must
 * be a publickey userauth request for this key, for a permitted user, with the session id of
 * the latest binding and (past the first hop) that binding's host key.
 * Returns the extra line for the confirm prompt, or undefined when refused.
 */
export function restrictedSignAllowed(
  rules: readonly DestinationRule[],
  session: SessionBindings,
  keyBlob: Buffer,
  data: Buffer,
): string | undefined {
  if (session.bindings.length === 0) return undefined;
  let ua;
  try {
    ua = parseUserauthRequest(data);
  } catch {
    return undefined;
  }
  const key = parsedKey(keyBlob);
  let signed: ParsedKey;
  try {
    signed = parsedKey(Buffer.from(ua.keyBlob));
  } catch {
    return undefined;
  }
  if (!keysEqual(key, signed)) return undefined;
  const cls = keyTypeClass(ua.algorithm);
  if (cls === undefined || cls !== keyTypeClass(key.key.type)) return undefined;
  if (!identityPermitted(rules, session, ua.user)) return undefined;
  const last = session.bindings[session.bindings.length - 1];
  if (!buffersEqual(ua.sessionId, last.sessionId)) return undefined;
  if (session.bindings.length > 1 && ua.hostKey === undefined) return undefined;
  if (ua.hostKey !== undefined) {
    let hk: ParsedKey;
    try {
      hk = parsedKey(Buffer.from(ua.hostKey));
    } catch {
      return undefined;
    }
    if (!keysEqual(hk, last.hostKey)) return undefined;
  }
  return `public key authentication request for user "${ua.user}" to listed host`;
}
