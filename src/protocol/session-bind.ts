/**
 * `session-bind@openssh.com` (OpenSSH PROTOCOL.agent §1): the body of the EXTENSION request
 * after its name. `ssh` sends it on every agent connection it uses, binding the connection
 * to the session it authenticates (is_forwarding = false) or forwards through (true).
 */
import { SshReader, SshWriter } from './wire';

export const SESSION_BIND = 'session-bind@openssh.com';

export interface SessionBind {
  /** The server's host key blob (plain key or host certificate). */
  readonly hostKey: Buffer;
  /** The exchange hash H of the initial key exchange (RFC 4253 §7.2). */
  readonly sessionId: Buffer;
  /** The host key's signature over the session id (from the KEX reply). */
  readonly signature: Buffer;
  readonly isForwarding: boolean;
}

export function decodeSessionBind(contents: Buffer): SessionBind {
  const r = new SshReader(contents);
  const bind = { hostKey: r.string(), sessionId: r.string(), signature: r.string(), isForwarding: r.bool() };
  r.end();
  return bind;
}

export function encodeSessionBind(b: SessionBind): Buffer {
  const w = new SshWriter(256).string(b.hostKey).string(b.sessionId).string(b.signature).bool(b.isForwarding);
  return Buffer.from(w.finish());
}
