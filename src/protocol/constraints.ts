/**
 * Key constraints of ADD_ID_CONSTRAINED (RFC 9987 §5.2.1; OpenSSH PROTOCOL.agent §1-2).
 * Fail closed: an unknown constraint byte or extension name, a duplicate, or a malformed
 * payload makes the whole request undecodable, so the key is never added without the
 * restriction its owner asked for.
 */
import { decodeDestinationConstraints, encodeDestinationConstraints } from './destination';
import type { DestinationConstraint } from './destination';
import { SshReader, SshWriter } from './wire';

export const CONSTRAIN = {
  LIFETIME: 1,
  CONFIRM: 2,
  /** 3 was SSH_AGENT_CONSTRAIN_MAXSIGN (never in OpenSSH's agent); refused like any unknown byte. */
  EXTENSION: 255,
} as const;

export const RESTRICT_DESTINATION = 'restrict-destination-v00@openssh.com';
export const ASSOCIATED_CERTS = 'associated-certs-v00@openssh.com';
export const SK_PROVIDER = 'sk-provider@openssh.com';

export interface LifetimeConstraint {
  readonly type: 'lifetime';
  readonly seconds: number;
}
export interface ConfirmConstraint {
  readonly type: 'confirm';
}
export interface RestrictDestinationConstraint {
  readonly type: 'restrict-destination';
  readonly constraints: readonly DestinationConstraint[];
}
export interface AssociatedCertsConstraint {
  readonly type: 'associated-certs';
  readonly certsOnly: boolean;
  readonly certs: Buffer;
}
export interface SkProviderConstraint {
  readonly type: 'sk-provider';
  readonly provider: string;
}

export type Constraint =
  LifetimeConstraint | ConfirmConstraint | RestrictDestinationConstraint | AssociatedCertsConstraint | SkProviderConstraint;

function readExtensionConstraint(r: SshReader): Constraint {
  const name = r.text();
  // The payload after the name is not length-prefixed as a whole (PROTOCOL.agent), so only
  // an extension whose layout we know can be skipped safely: unknown names are fatal.
  switch (name) {
    case RESTRICT_DESTINATION:
      return { type: 'restrict-destination', constraints: decodeDestinationConstraints(r.string()) };
    case ASSOCIATED_CERTS:
      return { type: 'associated-certs', certsOnly: r.bool(), certs: r.string() };
    case SK_PROVIDER:
      return { type: 'sk-provider', provider: r.text() };
    default:
      return r.fail(`unknown constraint extension ${JSON.stringify(name.slice(0, 64))}`);
  }
}

/** Reads constraints until the end of the message. */
export function readConstraints(r: SshReader): Constraint[] {
  const out: Constraint[] = [];
  const seen = new Set<Constraint['type']>();
  while (!r.atEnd) {
    const kind = r.byte();
    let c: Constraint;
    if (kind === CONSTRAIN.LIFETIME) c = { type: 'lifetime', seconds: r.uint32() };
    else if (kind === CONSTRAIN.CONFIRM) c = { type: 'confirm' };
    else if (kind === CONSTRAIN.EXTENSION) c = readExtensionConstraint(r);
    else r.fail(`unknown constraint ${kind}`);
    if (seen.has(c.type)) r.fail(`duplicate ${c.type} constraint`);
    seen.add(c.type);
    out.push(c);
  }
  return out;
}

export function writeConstraints(w: SshWriter, constraints: readonly Constraint[]): void {
  for (const c of constraints) {
    switch (c.type) {
      case 'lifetime':
        w.byte(CONSTRAIN.LIFETIME).uint32(c.seconds);
        break;
      case 'confirm':
        w.byte(CONSTRAIN.CONFIRM);
        break;
      case 'restrict-destination':
        w.byte(CONSTRAIN.EXTENSION).string(RESTRICT_DESTINATION).string(encodeDestinationConstraints(c.constraints));
        break;
      case 'associated-certs':
        w.byte(CONSTRAIN.EXTENSION).string(ASSOCIATED_CERTS).bool(c.certsOnly).string(c.certs);
        break;
      case 'sk-provider':
        w.byte(CONSTRAIN.EXTENSION).string(SK_PROVIDER).string(c.provider);
        break;
    }
  }
}
