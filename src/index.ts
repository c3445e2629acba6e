/**
 * tsagent as a library (the package root): a client for any ssh-agent modelled on paramiko's
 * agent module (getKeys, AgentClient, AgentKey, agent forwarding), the typed errors, the
 * Agent interface and protocol types, and the pieces to embed an agent (Keyring, AgentServer).
 */

// ---- client (paramiko's Agent / AgentKey) ----
export { getKeys } from './client/get-keys';
export { AgentClient, DEFAULT_TIMEOUT_MS, MAX_IDENTITIES } from './client/agent-client';
export type { AgentClientOptions } from './client/agent-client';
export { AgentKey } from './client/agent-key';
export type { RsaSignatureAlgorithm, SignOptions } from './client/agent-key';
export type { AddKeyOptions, PrivateKeySource } from './client/add-key';

// ---- forwarding (paramiko's AgentRequestHandler / AgentClientProxy / AgentServerProxy ...) ----
export { forwardAgentChannel } from './client/forwarding';
export type { ForwardAgentOptions } from './client/forwarding';
export { exposeForwardedAgent } from './client/forwarding-server';
export type { ExposeAgentOptions, ForwardedAgent } from './client/forwarding-server';
export { DEFAULT_MAX_IN_FLIGHT, relayFrames } from './client/frame-relay';
export type { AgentRelay, RelayOptions } from './client/frame-relay';

// ---- errors ----
export * from './errors';

// ---- the Agent interface and protocol types ----
export type { AddIdentityOptions, Agent, ExtensionResult } from './agent/agent';
export { AgentSession } from './agent/session';
export type { AgentSessionOptions, PeerCredentials } from './agent/session';
export { MSG, SIGN_FLAG } from './protocol/messages';
export type {
  ExtensionFailureResponse,
  ExtensionResponse,
  FailureResponse,
  IdentitiesAnswer,
  Identity,
  Request,
  Response,
  SignResponse,
  SuccessResponse,
} from './protocol/messages';
export type { ConfirmConstraint, Constraint, LifetimeConstraint } from './protocol/constraints';
export type { PrivateKeyBody } from './protocol/private-key';
export type { FingerprintHash } from './keys/fingerprint';

// ---- embedding an agent ----
export { Keyring } from './agent/keyring';
export type { KeyringOptions } from './agent/keyring';
export type { ConfirmRequest, Confirmer } from './agent/confirm';
export { AgentServer } from './server/agent-server';
export type { AgentServerOptions, ListenTarget } from './server/agent-server';
