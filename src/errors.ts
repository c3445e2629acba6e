/**
 * Typed errors shared by the daemon and the client. Every error tsagent raises
 * is one of these classes; callers branch on the class (or `code`), never on
 * the message text. Messages never contain key material.
 */

export type AgentErrorCode =
  | 'PROTOCOL'
  | 'FRAME'
  | 'FAILURE'
  | 'EXTENSION_FAILURE'
  | 'LOCKED'
  | 'KEY_NOT_FOUND'
  | 'UNSUPPORTED_KEY'
  | 'INVALID_KEY'
  | 'CONSTRAINT'
  | 'CONFIRM_DENIED'
  | 'NOT_PRESENT'
  | 'TIMEOUT'
  | 'CLOSED'
  | 'USAGE'
  | 'SOCKET'
  | 'SERVICE'
  | 'PKCS11'
  | 'CONFIG'
  | 'KEY_FILE'
  | 'CONTROL';

export abstract class AgentError extends Error {
  abstract readonly code: AgentErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bytes that do not decode as the message they claim to be (truncated, trailing, bad field). */
export class ProtocolError extends AgentError {
  readonly code = 'PROTOCOL';
  constructor(
    message: string,
    readonly messageType?: number,
    readonly offset?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The framing itself is broken (zero or oversized length): the connection must be closed. */
export class FrameError extends AgentError {
  readonly code = 'FRAME';
}

/** The agent answered SSH_AGENT_FAILURE, or the keyring refuses a request. */
export class AgentFailureError extends AgentError {
  readonly code = 'FAILURE';
}

/** A known extension failed (reply 28, OpenSSH >= 10.3). */
export class ExtensionFailureError extends AgentError {
  readonly code = 'EXTENSION_FAILURE';
}

export class AgentLockedError extends AgentError {
  readonly code = 'LOCKED';
}

export class KeyNotFoundError extends AgentError {
  readonly code = 'KEY_NOT_FOUND';
}

/** A key type tsagent does not hold (sk-* keys, DSA, unknown names) or a too-small RSA key. */
export class UnsupportedKeyError extends AgentError {
  readonly code = 'UNSUPPORTED_KEY';
}

/** Private key fields that do not form a valid key (public/private mismatch, bad point...). */
export class InvalidKeyError extends AgentError {
  readonly code = 'INVALID_KEY';
}

/** An unknown, duplicated or malformed key constraint. */
export class ConstraintError extends AgentError {
  readonly code = 'CONSTRAINT';
}

export class ConfirmDeniedError extends AgentError {
  readonly code = 'CONFIRM_DENIED';
}

/** No agent could be reached (no SSH_AUTH_SOCK, nothing listening). */
export class AgentNotPresentError extends AgentError {
  readonly code = 'NOT_PRESENT';
}

export class AgentTimeoutError extends AgentError {
  readonly code = 'TIMEOUT';
}

export class ConnectionClosedError extends AgentError {
  readonly code = 'CLOSED';
}

export class UsageError extends AgentError {
  readonly code = 'USAGE';
}

/** The listening socket cannot be created (path in use by a live agent, bad permissions...). */
export class SocketError extends AgentError {
  readonly code = 'SOCKET';
}

/** `tsagent service install|uninstall` cannot do its job (unsafe path, foreign file, unit still enabled...). */
export class ServiceError extends AgentError {
  readonly code = 'SERVICE';
}

/** A PKCS#11 call returned something other than CKR_OK (inside the provider helper). */
export class Pkcs11Error extends AgentError {
  readonly code = 'PKCS11';
  constructor(
    readonly fn: string,
    readonly rv: number,
  ) {
    super(`${fn} failed: CKR 0x${rv.toString(16)}`);
  }
}

/**
 * A peer does not speak the ssh-agent protocol: broken framing, a reply over 256 KiB, an
 * unknown or unexpected reply type, a list of more than 2048 keys, or bytes that do not
 * decode (e.g. an HTTP server answering `HTTP/1.1 400`). Raised by the client and by the
 * forwarding relay (for either side).
 */
export class AgentProtocolError extends ProtocolError {}

/**
 * The configuration file cannot be used (POLICY.md §2): unreadable, too large, not TOML, or
 * a table, key or value the schema refuses. The message names the file, the line (when one
 * is known) and the key, e.g. `config.toml:12: rule[2].action: must be "allow", …`.
 */
export class ConfigError extends AgentError {
  readonly code = 'CONFIG';
  constructor(
    readonly detail: string,
    readonly file: string,
    readonly line: number | null,
    readonly key: string | null,
    options?: { cause?: unknown },
  ) {
    super(`${file}${line === null ? '' : `:${line}`}: ${key === null ? '' : `${key}: `}${detail}`, options);
  }
}

/**
 * A registered key file (`[[key]] file=`, POLICY.md §3) cannot be used: missing, unreadable,
 * not a regular file, readable by others, of an unsupported type, or a wrong passphrase.
 * The message names the file; never anything from inside it.
 */
export class KeyFileError extends AgentError {
  readonly code = 'KEY_FILE';
  constructor(
    readonly detail: string,
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${detail}`, options);
  }
}

/** The control socket (POLICY.md §5) is absent, refuses the peer, or answers with an error. */
export class ControlError extends AgentError {
  readonly code = 'CONTROL';
}
