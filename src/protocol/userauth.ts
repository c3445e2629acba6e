/**
 * The data `ssh` asks an agent to sign for public key authentication (RFC 4252 §7), plus
 * OpenSSH's `publickey-hostbound-v00@openssh.com` variant which appends the server host key
 * (OpenSSH PROTOCOL §2.5). Destination-constrained keys may only sign this.
 *
 *   string session_id, byte 50, string user, string "ssh-connection",
 *   string method, bool TRUE, string algorithm, string key blob [, string host key]
 */
import { ProtocolError } from '../errors';
import { SshReader } from './wire';

export const SSH_MSG_USERAUTH_REQUEST = 50;
export const PUBLICKEY_HOSTBOUND = 'publickey-hostbound-v00@openssh.com';

export interface UserauthRequest {
  readonly sessionId: Buffer;
  readonly user: string;
  readonly service: string;
  readonly method: string;
  readonly algorithm: string;
  readonly keyBlob: Buffer;
  /** Present for publickey-hostbound-v00@openssh.com. */
  readonly hostKey?: Buffer;
}

/** Parses `data` as a publickey userauth request; throws ProtocolError if it is not one. */
export function parseUserauthRequest(data: Buffer): UserauthRequest {
  const r = new SshReader(data);
  const sessionId = r.string();
  if (sessionId.length === 0) r.fail('empty session id');
  if (r.byte() !== SSH_MSG_USERAUTH_REQUEST) r.fail('not a userauth request');
  const user = r.text();
  const service = r.text();
  const method = r.text();
  if (r.byte() !== 1) r.fail('signature flag not set');
  const algorithm = r.text();
  const keyBlob = r.string();
  let hostKey: Buffer | undefined;
  if (service !== 'ssh-connection') r.fail('not an ssh-connection userauth request');
  if (method === PUBLICKEY_HOSTBOUND) hostKey = r.string();
  else if (method !== 'publickey') r.fail(`userauth method ${JSON.stringify(method.slice(0, 64))} is not publickey`);
  r.end();
  if (user.includes('\0')) throw new ProtocolError('NUL in user name');
  return hostKey === undefined
    ? { sessionId, user, service, method, algorithm, keyBlob }
    : { sessionId, user, service, method, algorithm, keyBlob, hostKey };
}
