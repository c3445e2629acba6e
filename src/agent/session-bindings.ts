/**
 * A connection's session bindings (OpenSSH PROTOCOL.agent §1, ssh-agent.c
 * process_ext_session_bind): which SSH sessions this agent connection serves, hop by hop.
 * Destination-constrained keys are checked against this path; AgentSession (session.ts)
 * owns one per connection.
 */
import { timingSafeEqual } from 'node:crypto';
import { ExtensionFailureError, ProtocolError } from '../errors';
import { certificateSignatureValid } from '../keys/certificate';
import { keysEqual, parsedKey } from '../keys/key-equality';
import type { ParsedKey } from '../keys/key-equality';
import { verifySignature } from '../keys/verify';
import type { SignatureVerifier } from '../keys/verify';
import { decodeSessionBind } from '../protocol/session-bind';

/** ssh-agent.c AGENT_MAX_SESSION_IDS: a path longer than this is refused. */
export const MAX_SESSION_BINDINGS = 16;
/** ssh-agent.c AGENT_MAX_SID_LEN: exchange hashes are at most SHA-512 sized; 128 leaves room. */
export const MAX_SESSION_ID_LENGTH = 128;

export interface SessionBinding {
  readonly hostKey: ParsedKey;
  readonly sessionId: Buffer;
  readonly forwarded: boolean;
}

export function buffersEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export class SessionBindings {
  private readonly list: SessionBinding[] = [];
  private attempted = false;

  get bindings(): readonly SessionBinding[] {
    return this.list;
  }

  /** A bind was tried on this connection (even one that failed). */
  get bindAttempted(): boolean {
    return this.attempted;
  }

  /**
   * Records a binding from a session-bind request's contents, after checking the host key's
   * signature over the session id. Throws ExtensionFailureError (reply 28) on any failure;
   * a failed attempt still marks the connection, so restricted keys stay unusable on it.
   * `verifier` remembers host keys and verified binds across connections.
   */
  bind(contents: Buffer, verifier?: SignatureVerifier): void {
    this.attempted = true;
    let req;
    let hostKey: ParsedKey;
    try {
      req = decodeSessionBind(contents);
      hostKey = parsedKey(Buffer.from(req.hostKey));
    } catch (err) {
      throw new ExtensionFailureError('malformed session-bind', { cause: err instanceof ProtocolError ? err : undefined });
    }
    if (req.sessionId.length > MAX_SESSION_ID_LENGTH) throw new ExtensionFailureError('session id too long');
    if (hostKey.key.kind === 'other') throw new ExtensionFailureError('unsupported host key type');
    if (hostKey.key.kind === 'certificate' && !certificateSignatureValid(hostKey.key)) {
      throw new ExtensionFailureError('host certificate signature invalid');
    }
    const verified =
      verifier === undefined
        ? verifySignature(hostKey.blob, req.sessionId, req.signature)
        : verifier.verify(hostKey.blob, req.sessionId, req.signature);
    if (!verified) {
      throw new ExtensionFailureError('host key signature over the session id does not verify');
    }
    for (const b of this.list) {
      if (!b.forwarded) throw new ExtensionFailureError('connection already bound for authentication');
      const sidMatch = buffersEqual(b.sessionId, req.sessionId);
      if (sidMatch && keysEqual(b.hostKey, hostKey)) return; // already recorded
      if (sidMatch) throw new ExtensionFailureError('session id recorded against a different host key');
    }
    if (this.list.length >= MAX_SESSION_BINDINGS) throw new ExtensionFailureError('too many session bindings');
    this.list.push({ hostKey, sessionId: Buffer.from(req.sessionId), forwarded: req.isForwarding });
  }
}
