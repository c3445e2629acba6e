/**
 * Encode and decode of every ssh-agent message body (the bytes after the uint32 length).
 * Pure and strict: a body decodes completely or throws ProtocolError; bytes left over are
 * an error, except where the protocol makes the tail opaque (extension contents).
 */
import { ProtocolError } from '../errors';
import { readConstraints, writeConstraints } from './constraints';
import { MSG } from './messages';
import type { Identity, Request, Response } from './messages';
import { readPrivateKeyBody, writePrivateKeyBody } from './private-key';
import { SshReader, SshWriter } from './wire';

/** Room for the uint32 length that frames a message; filled in by `finishFrame`. */
const FRAME_HEADER = 4;

function finishFrame(w: SshWriter): Buffer {
  const out = w.finish();
  out.writeUInt32BE(out.length - FRAME_HEADER, 0);
  return out;
}

// ---- requests ---------------------------------------------------------------------------

/** A provider path is a C string in OpenSSH (sshbuf_get_cstring): no NUL inside. */
function providerPath(r: SshReader): string {
  const raw = r.string();
  if (raw.includes(0)) r.fail('NUL in provider path');
  return raw.toString('utf8');
}

export function decodeRequest(body: Buffer): Request {
  if (body.length === 0) throw new ProtocolError('empty message');
  const messageType = body[0];
  const r = new SshReader(body.subarray(1), messageType);
  let req: Request;
  switch (messageType) {
    case MSG.REQUEST_IDENTITIES:
      req = { type: 'request-identities' };
      break;
    case MSG.SIGN_REQUEST:
      req = { type: 'sign', keyBlob: r.string(), data: r.string(), flags: r.uint32() };
      break;
    case MSG.ADD_IDENTITY:
    case MSG.ADD_ID_CONSTRAINED: {
      const key = readPrivateKeyBody(r);
      const comment = r.cstring();
      const constrained = messageType === MSG.ADD_ID_CONSTRAINED;
      const constraints = constrained ? readConstraints(r) : [];
      req = { type: 'add-identity', key, comment, constraints, constrained };
      break;
    }
    case MSG.REMOVE_IDENTITY:
      req = { type: 'remove-identity', keyBlob: r.string() };
      break;
    case MSG.REMOVE_ALL_IDENTITIES:
    case MSG.REMOVE_ALL_RSA_IDENTITIES:
      req = { type: 'remove-all-identities', legacy: messageType === MSG.REMOVE_ALL_RSA_IDENTITIES };
      break;
    case MSG.LOCK:
      req = { type: 'lock', passphrase: r.string() };
      break;
    case MSG.UNLOCK:
      req = { type: 'unlock', passphrase: r.string() };
      break;
    case MSG.EXTENSION:
      req = { type: 'extension', name: r.text(), contents: r.rest() };
      break;
    case MSG.ADD_SMARTCARD_KEY:
    case MSG.ADD_SMARTCARD_KEY_CONSTRAINED: {
      const provider = providerPath(r);
      const pin = r.string();
      const constraints = readConstraints(r);
      req = {
        type: 'add-smartcard-key',
        provider,
        pin,
        constraints,
        constrained: messageType === MSG.ADD_SMARTCARD_KEY_CONSTRAINED,
      };
      break;
    }
    case MSG.REMOVE_SMARTCARD_KEY:
      req = { type: 'remove-smartcard-key', provider: providerPath(r), pin: r.string() };
      break;
    default:
      return { type: 'unsupported', messageType, body: r.rest() };
  }
  r.end();
  return req;
}

function writeRequest(w: SshWriter, req: Request): void {
  switch (req.type) {
    case 'request-identities':
      w.byte(MSG.REQUEST_IDENTITIES);
      return;
    case 'sign':
      w.byte(MSG.SIGN_REQUEST).string(req.keyBlob).string(req.data).uint32(req.flags);
      return;
    case 'add-identity': {
      const constrained = req.constrained || req.constraints.length > 0;
      w.byte(constrained ? MSG.ADD_ID_CONSTRAINED : MSG.ADD_IDENTITY);
      writePrivateKeyBody(w, req.key);
      w.string(req.comment);
      writeConstraints(w, req.constraints);
      return;
    }
    case 'remove-identity':
      w.byte(MSG.REMOVE_IDENTITY).string(req.keyBlob);
      return;
    case 'remove-all-identities':
      w.byte(req.legacy ? MSG.REMOVE_ALL_RSA_IDENTITIES : MSG.REMOVE_ALL_IDENTITIES);
      return;
    case 'lock':
      w.byte(MSG.LOCK).string(req.passphrase);
      return;
    case 'unlock':
      w.byte(MSG.UNLOCK).string(req.passphrase);
      return;
    case 'extension':
      w.byte(MSG.EXTENSION).string(req.name).raw(req.contents);
      return;
    case 'add-smartcard-key': {
      const constrained = req.constrained || req.constraints.length > 0;
      w.byte(constrained ? MSG.ADD_SMARTCARD_KEY_CONSTRAINED : MSG.ADD_SMARTCARD_KEY)
        .string(req.provider)
        .string(req.pin);
      writeConstraints(w, req.constraints);
      return;
    }
    case 'remove-smartcard-key':
      w.byte(MSG.REMOVE_SMARTCARD_KEY).string(req.provider).string(req.pin);
      return;
    case 'unsupported':
      w.byte(req.messageType).raw(req.body);
      return;
  }
}

export function encodeRequest(req: Request): Buffer {
  const w = new SshWriter();
  writeRequest(w, req);
  return w.finish();
}

/** The request with its uint32 length prefix, ready for the socket. */
export function encodeRequestFrame(req: Request): Buffer {
  const w = new SshWriter();
  w.uint32(0);
  writeRequest(w, req);
  return finishFrame(w);
}

// ---- responses --------------------------------------------------------------------------

export interface DecodeResponseOptions {
  /** Refuse identity lists longer than this (OpenSSH's client: 2048, authfd.c MAX_AGENT_IDENTITIES). */
  readonly maxIdentities?: number;
}

export function decodeResponse(body: Buffer, opts: DecodeResponseOptions = {}): Response {
  if (body.length === 0) throw new ProtocolError('empty message');
  const messageType = body[0];
  const r = new SshReader(body.subarray(1), messageType);
  let resp: Response;
  switch (messageType) {
    case MSG.FAILURE:
      resp = { type: 'failure' };
      break;
    case MSG.SUCCESS:
      resp = { type: 'success' };
      break;
    case MSG.IDENTITIES_ANSWER: {
      const n = r.uint32();
      const max = opts.maxIdentities ?? Number.MAX_SAFE_INTEGER;
      if (n > max) r.fail(`too many identities (${n} > ${max})`);
      // Each identity takes at least 8 bytes: refuse absurd counts before allocating.
      if (n > r.remaining / 8) r.fail(`identity count ${n} exceeds message size`);
      const identities: Identity[] = new Array<Identity>(n);
      for (let i = 0; i < n; i++) identities[i] = { blob: r.string(), comment: r.text() };
      resp = { type: 'identities', identities };
      break;
    }
    case MSG.SIGN_RESPONSE:
      resp = { type: 'sign-response', signature: r.string() };
      break;
    case MSG.EXTENSION_FAILURE:
      resp = { type: 'extension-failure' };
      break;
    case MSG.EXTENSION_RESPONSE:
      resp = { type: 'extension-response', contents: r.rest() };
      break;
    default:
      throw new ProtocolError(`unexpected reply type ${messageType}`, messageType, 0);
  }
  r.end();
  return resp;
}

function writeResponse(w: SshWriter, resp: Response): void {
  switch (resp.type) {
    case 'failure':
      w.byte(MSG.FAILURE);
      return;
    case 'success':
      w.byte(MSG.SUCCESS);
      if (resp.contents !== undefined) w.raw(resp.contents);
      return;
    case 'identities':
      w.byte(MSG.IDENTITIES_ANSWER).uint32(resp.identities.length);
      for (const id of resp.identities) w.string(id.blob).string(id.comment);
      return;
    case 'sign-response':
      w.byte(MSG.SIGN_RESPONSE).string(resp.signature);
      return;
    case 'extension-failure':
      w.byte(MSG.EXTENSION_FAILURE);
      return;
    case 'extension-response':
      w.byte(MSG.EXTENSION_RESPONSE).raw(resp.contents);
      return;
  }
}

export function encodeResponse(resp: Response): Buffer {
  const w = new SshWriter(64);
  writeResponse(w, resp);
  return w.finish();
}

/** The response with its uint32 length prefix, ready for the socket. */
export function encodeResponseFrame(resp: Response): Buffer {
  const w = new SshWriter(resp.type === 'identities' ? 256 : 64);
  w.uint32(0);
  writeResponse(w, resp);
  return finishFrame(w);
}
