/**
 * The one interface both the daemon's keyring and the socket client implement (the idea of
 * Go's x/crypto/ssh/agent.Agent). The server serves any Agent, so a forwarding relay is just
 * a server whose Agent is a client. Failures are thrown as typed errors (src/errors.ts).
 */
import type { Constraint } from '../protocol/constraints';
import type { ExtensionResponse, Identity, Request, Response, SuccessResponse } from '../protocol/messages';
import type { PrivateKeyBody } from '../protocol/private-key';
import type { AgentSession } from './session';

export interface AddIdentityOptions {
  readonly key: PrivateKeyBody;
  readonly comment: string;
  readonly constraints?: readonly Constraint[];
}

/** ADD_SMARTCARD_KEY(_CONSTRAINED): a PKCS#11 provider path, its PIN (secret) and constraints. */
export interface SmartcardAddOptions {
  readonly provider: string;
  /** Secret; only read, zeroed by the caller once the request is done. */
  readonly pin: Buffer;
  readonly constraints: readonly Constraint[];
}

/** What an extension answers: plain SUCCESS, or EXTENSION_RESPONSE with its contents. */
export type ExtensionResult = SuccessResponse | ExtensionResponse;

/**
 * Per-request methods take the connection's AgentSession last, always (AgentSession.inProcess()
 * for direct use). An implementation that has no use for it, like AgentClient, leaves the
 * parameter out: TypeScript accepts the shorter signature, and its callers need no session.
 */
export interface Agent {
  /** REQUEST_IDENTITIES: the identities this session may see, in order (empty while locked). */
  list(session: AgentSession): Promise<Identity[]>;
  /** SIGN_REQUEST: the SSH signature blob (`string alg, string bytes`). */
  sign(keyBlob: Buffer, data: Buffer, flags: number, session: AgentSession): Promise<Buffer>;
  /** ADD_IDENTITY / ADD_ID_CONSTRAINED. */
  add(identity: AddIdentityOptions, session: AgentSession): Promise<void>;
  remove(keyBlob: Buffer, session: AgentSession): Promise<void>;
  removeAll(session: AgentSession): Promise<void>;
  lock(passphrase: Buffer, session: AgentSession): Promise<void>;
  unlock(passphrase: Buffer, session: AgentSession): Promise<void>;
  extension(name: string, contents: Buffer, session: AgentSession): Promise<ExtensionResult>;
  /** ADD_SMARTCARD_KEY (20/26). Absent: the agent answers FAILURE. */
  addSmartcardKey?(opts: SmartcardAddOptions, session: AgentSession): Promise<void>;
  /** REMOVE_SMARTCARD_KEY (21). Absent: the agent answers FAILURE. */
  removeSmartcardKey?(provider: string, session: AgentSession): Promise<void>;
}

/**
 * An Agent that can answer its commonest requests at once, without promises: the daemon's
 * hot path (lists, refusals, and signatures that need no prompt and no thread pool). The
 * server asks first and falls back to the asynchronous path; both are decided by the same
 * gate (gate.ts), so they give the same answers.
 */
export interface SyncAnswering {
  /** The reply, or undefined when the request must take the asynchronous path. Never throws. */
  answerSync(req: Request, session: AgentSession): Response | undefined;
}

export function answersSync(agent: Agent): agent is Agent & SyncAnswering {
  return typeof (agent as Partial<SyncAnswering>).answerSync === 'function';
}
