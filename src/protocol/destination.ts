/**
 * The `restrict-destination-v00@openssh.com` key constraint (OpenSSH PROTOCOL.agent §2):
 * which hops, from which host to which host and user, a key may be used for.
 * Pure structure here; the rules (empty from-user, complete to-hop, limits) are enforced by
 * src/agent/destination-policy.ts.
 *
 *   string constraints := { string constraint }*
 *   constraint := string from_hop, string to_hop, string reserved
 *   hop := string username, string hostname, string reserved, { string keyblob, bool is_ca }*
 */
import { SshReader, SshWriter } from './wire';

export interface KeySpec {
  readonly blob: Buffer;
  readonly isCa: boolean;
}

export interface DestinationHop {
  /** Empty string: every user (to-hop) / must be empty (from-hop). */
  readonly user: string;
  /** Empty string: the origin (from-hop). */
  readonly hostname: string;
  readonly reserved: Buffer;
  readonly keys: readonly KeySpec[];
}

export interface DestinationConstraint {
  readonly from: DestinationHop;
  readonly to: DestinationHop;
  readonly reserved: Buffer;
}

/** A C string on the wire: OpenSSH's sshbuf_get_cstring refuses embedded NULs. */
function cstring(r: SshReader): string {
  const b = r.string();
  if (b.includes(0)) r.fail('NUL in string');
  return b.toString('utf8');
}

function readHop(blob: Buffer): DestinationHop {
  const r = new SshReader(blob);
  const user = cstring(r);
  const hostname = cstring(r);
  const reserved = r.string();
  const keys: KeySpec[] = [];
  while (!r.atEnd) keys.push({ blob: r.string(), isCa: r.byte() !== 0 });
  return { user, hostname, reserved, keys };
}

/** Decodes the contents of the constraint's outer string. */
export function decodeDestinationConstraints(data: Buffer): DestinationConstraint[] {
  const outer = new SshReader(data);
  const out: DestinationConstraint[] = [];
  while (!outer.atEnd) {
    const r = new SshReader(outer.string());
    const from = readHop(r.string());
    const to = readHop(r.string());
    const reserved = r.string();
    r.end();
    out.push({ from, to, reserved });
  }
  return out;
}

function writeHop(hop: DestinationHop): Buffer {
  const w = new SshWriter(128).string(hop.user).string(hop.hostname).string(hop.reserved);
  for (const k of hop.keys) w.string(k.blob).bool(k.isCa);
  return Buffer.from(w.finish());
}

/** Encodes constraints as the contents of the constraint's outer string. */
export function encodeDestinationConstraints(constraints: readonly DestinationConstraint[]): Buffer {
  const outer = new SshWriter(256);
  for (const c of constraints) {
    const inner = new SshWriter(256).string(writeHop(c.from)).string(writeHop(c.to)).string(c.reserved).finish();
    outer.string(inner);
  }
  return Buffer.from(outer.finish());
}
