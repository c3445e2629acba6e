/**
 * Message numbers and the typed request/response unions of the ssh-agent protocol
 * (RFC 9987 §5; OpenSSH PROTOCOL.agent). The single table of numbers lives here.
 */
import type { Constraint } from './constraints';
import type { PrivateKeyBody } from './private-key';

export const MSG = {
  /** SSH1 leftover that `ssh-add -D` still sends; OpenSSH treats it as remove-all. */
  REMOVE_ALL_RSA_IDENTITIES: 9,
  REQUEST_IDENTITIES: 11,
  SIGN_REQUEST: 13,
  ADD_IDENTITY: 17,
  REMOVE_IDENTITY: 18,
  REMOVE_ALL_IDENTITIES: 19,
  ADD_SMARTCARD_KEY: 20,
  REMOVE_SMARTCARD_KEY: 21,
  LOCK: 22,
  UNLOCK: 23,
  ADD_ID_CONSTRAINED: 25,
  ADD_SMARTCARD_KEY_CONSTRAINED: 26,
  EXTENSION: 27,

  FAILURE: 5,
  SUCCESS: 6,
  IDENTITIES_ANSWER: 12,
  SIGN_RESPONSE: 14,
  EXTENSION_FAILURE: 28,
  EXTENSION_RESPONSE: 29,
} as const;

/** SIGN_REQUEST flags (RFC 9987 §5.6). Flag 1 (old SSH1-era signature) is ignored. */
export const SIGN_FLAG = {
  RSA_SHA2_256: 2,
  RSA_SHA2_512: 4,
} as const;

export interface RequestIdentities {
  readonly type: 'request-identities';
}

export interface SignRequest {
  readonly type: 'sign';
  readonly keyBlob: Buffer;
  readonly data: Buffer;
  readonly flags: number;
}

export interface AddIdentity {
  readonly type: 'add-identity';
  readonly key: PrivateKeyBody;
  readonly comment: string;
  readonly constraints: readonly Constraint[];
  /** Sent as ADD_ID_CONSTRAINED (25) rather than ADD_IDENTITY (17). */
  readonly constrained: boolean;
}

export interface RemoveIdentity {
  readonly type: 'remove-identity';
  readonly keyBlob: Buffer;
}

export interface RemoveAllIdentities {
  readonly type: 'remove-all-identities';
  /** Sent as the SSH1 message 9 (what `ssh-add -D` sends first). */
  readonly legacy: boolean;
}

export interface Lock {
  readonly type: 'lock';
  readonly passphrase: Buffer;
}

export interface Unlock {
  readonly type: 'unlock';
  readonly passphrase: Buffer;
}

export interface ExtensionRequest {
  readonly type: 'extension';
  readonly name: string;
  /** Extension-specific bytes after the name, kept opaque so a relay passes them unchanged. */
  readonly contents: Buffer;
}

/**
 * ADD_SMARTCARD_KEY (20) / ADD_SMARTCARD_KEY_CONSTRAINED (26): load a PKCS#11 provider and
 * add every key on its tokens (OpenSSH PROTOCOL.agent; ssh-agent.c process_add_smartcard_key).
 * OpenSSH parses constraints after the PIN for both numbers, so 20 may carry them too.
 */
export interface AddSmartcardKey {
  readonly type: 'add-smartcard-key';
  /** The provider path as the client sent it (the agent resolves it with realpath). */
  readonly provider: string;
  /** Secret: a view into the request body, which the server zeroes once the request is done. */
  readonly pin: Buffer;
  readonly constraints: readonly Constraint[];
  /** Sent as 26 rather than 20. */
  readonly constrained: boolean;
}

/** REMOVE_SMARTCARD_KEY (21): `string provider, string pin` (the PIN is ignored). */
export interface RemoveSmartcardKey {
  readonly type: 'remove-smartcard-key';
  readonly provider: string;
  readonly pin: Buffer;
}

/** Any unknown number (SSH1 leftovers included): answered with FAILURE, connection kept. */
export interface UnsupportedRequest {
  readonly type: 'unsupported';
  readonly messageType: number;
  readonly body: Buffer;
}

export type Request =
  | RequestIdentities
  | SignRequest
  | AddIdentity
  | RemoveIdentity
  | RemoveAllIdentities
  | Lock
  | Unlock
  | ExtensionRequest
  | AddSmartcardKey
  | RemoveSmartcardKey
  | UnsupportedRequest;

export interface Identity {
  readonly blob: Buffer;
  readonly comment: string;
}

export interface FailureResponse {
  readonly type: 'failure';
}
export interface SuccessResponse {
  readonly type: 'success';
  /**
   * Bytes after the message type, for an extension that answers with SUCCESS and a body
   * (draft-00 `query`, see query.ts). Absent on every ordinary SUCCESS.
   */
  readonly contents?: Buffer;
}
export interface IdentitiesAnswer {
  readonly type: 'identities';
  readonly identities: readonly Identity[];
}
export interface SignResponse {
  readonly type: 'sign-response';
  /** `string algorithm, string signature-bytes` (RFC 4253 §6.6 signature blob). */
  readonly signature: Buffer;
}
export interface ExtensionFailureResponse {
  readonly type: 'extension-failure';
}
export interface ExtensionResponse {
  readonly type: 'extension-response';
  /** Extension-specific reply bytes (for `query`: string "query", then the names). */
  readonly contents: Buffer;
}

export type Response =
  FailureResponse | SuccessResponse | IdentitiesAnswer | SignResponse | ExtensionFailureResponse | ExtensionResponse;

export const FAILURE: FailureResponse = Object.freeze({ type: 'failure' });
export const SUCCESS: SuccessResponse = Object.freeze({ type: 'success' });
