/**
 * The one interface both the daemon's keyring and the socket client implement (the idea of
 * Go's x/crypto/ssh/agent.Agent). The server serves any Agent, so a forwarding relay is just
 * a server whose Agent is a client. Failures are thrown as typed errors (src/errors.ts).
 */
import type { Constraint } from '../protocol/constraints';
import type { ExtensionResponse, Identity, Request, Response, SuccessResponse } from '../protocol/messages';
import type { PrivateKeyBody } from '../protocol/private-key';
import type { SessionState } from './session';

/** Who is asking, and what this connection has said before (session bindings, issue-by-issue). */
export interface RequestContext {
  /** Unique per connection, for logs. */
  readonly connectionId: number;
  /** Peer credentials when the transport can tell (SO_PEERCRED). */
  readonly peer?: { readonly pid: number; readonly uid: number };
  /** The connection's session-bind@openssh.com bindings (absent: in-process use). */
  readonly session?: SessionState;
}

export interface AddIdentityOptions {
  readonly key: PrivateKeyBody;
  readonly comment: string;
  readonly constraints?: readonly Constraint[];
}

/** What an extension answers: plain SUCCESS, or EXTENSION_RESPONSE with its contents. */
export type ExtensionResult = SuccessResponse | ExtensionResponse;

export interface Agent {
  /** REQUEST_IDENTITIES: every identity in insertion order (empty while locked). */
  list(ctx?: RequestContext): Promise<Identity[]>;
  /** SIGN_REQUEST: the SSH signature blob (`string alg, string bytes`). */
  sign(keyBlob: Buffer, data: Buffer, flags?: number, ctx?: RequestContext): Promise<Buffer>;
  /** ADD_IDENTITY / ADD_ID_CONSTRAINED. */
  add(identity: AddIdentityOptions, ctx?: RequestContext): Promise<void>;
  remove(keyBlob: Buffer, ctx?: RequestContext): Promise<void>;
  removeAll(ctx?: RequestContext): Promise<void>;
  lock(passphrase: Buffer, ctx?: RequestContext): Promise<void>;
  unlock(passphrase: Buffer, ctx?: RequestContext): Promise<void>;
  extension(name: string, contents: Buffer, ctx?: RequestContext): Promise<ExtensionResult>;
}

/**
 * An Agent that can answer its commonest requests at once, without promises: the daemon's
 * hot path (list, and signatures that need no prompt and no thread pool). The server asks
 * first and falls back to the asynchronous path, which gives the same answers.
 */
export interface SyncAnswering {
  /** The reply, or undefined when the request must take the asynchronous path. Never throws. */
  answerSync(req: Request, ctx: RequestContext): Response | undefined;
}

export function answersSync(agent: Agent): agent is Agent & SyncAnswering {
  return typeof (agent as Partial<SyncAnswering>).answerSync === 'function';
}
