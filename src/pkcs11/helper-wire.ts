/**
 * The messages between the agent and a provider helper (one helper process per provider,
 * as OpenSSH runs one ssh-pkcs11-helper per provider). Framed like the agent protocol
 * (uint32 length, body) on a private pipe; pure codec, no I/O.
 *
 *   agent -> helper   LOAD  `string path, string pin`          -> KEYS or FAILURE
 *                     SIGN  `string key_blob, string data, uint32 flags` -> SIGNATURE or FAILURE
 *   helper -> agent   KEYS  `uint32 n, n × (string key_blob, string label)`
 *                     SIGNATURE `string signature_blob`
 *                     FAILURE `string reason` (never secret: CKR codes, "PIN required"…)
 */
import { ProtocolError } from '../errors';
import { SshReader, SshWriter } from '../protocol/wire';

export const HELPER_MSG = { LOAD: 1, SIGN: 2, FAILURE: 5, KEYS: 12, SIGNATURE: 14 } as const;

export type HelperRequest =
  | { readonly type: 'load'; readonly path: string; readonly pin: Buffer }
  | { readonly type: 'sign'; readonly blob: Buffer; readonly data: Buffer; readonly flags: number };

export type HelperReply =
  | { readonly type: 'keys'; readonly keys: ReadonlyArray<{ readonly blob: Buffer; readonly label: string }> }
  | { readonly type: 'signature'; readonly signature: Buffer }
  | { readonly type: 'failure'; readonly reason: string };

/** The framed request. A LOAD frame holds the PIN: the caller zeroes it once written. */
/** uint32 length, then the body `write` puts after it. */
function framed(size: number, write: (w: SshWriter) => void): Buffer {
  const w = new SshWriter(size).uint32(0);
  write(w);
  const out = w.finish();
  out.writeUInt32BE(out.length - 4, 0);
  return out;
}

export function encodeHelperRequest(req: HelperRequest): Buffer {
  if (req.type === 'load') return framed(512, (w) => w.byte(HELPER_MSG.LOAD).string(req.path).string(req.pin));
  return framed(req.data.length + req.blob.length + 32, (w) =>
    w.byte(HELPER_MSG.SIGN).string(req.blob).string(req.data).uint32(req.flags),
  );
}

/** A request body (views into it: a LOAD's pin is the caller's to zero). */
export function decodeHelperRequest(body: Buffer): HelperRequest {
  const r = new SshReader(body.subarray(1), body[0]);
  let req: HelperRequest;
  switch (body[0]) {
    case HELPER_MSG.LOAD:
      req = { type: 'load', path: r.text(), pin: r.string() };
      break;
    case HELPER_MSG.SIGN:
      req = { type: 'sign', blob: r.string(), data: r.string(), flags: r.uint32() };
      break;
    default:
      throw new ProtocolError(`unknown helper request ${body[0]}`);
  }
  r.end();
  return req;
}

export function encodeHelperReply(reply: HelperReply): Buffer {
  return framed(256, (w) => {
    switch (reply.type) {
      case 'keys':
        w.byte(HELPER_MSG.KEYS).uint32(reply.keys.length);
        for (const k of reply.keys) w.string(k.blob).string(k.label);
        return;
      case 'signature':
        w.byte(HELPER_MSG.SIGNATURE).string(reply.signature);
        return;
      case 'failure':
        w.byte(HELPER_MSG.FAILURE).string(reply.reason);
        return;
    }
  });
}

export function decodeHelperReply(body: Buffer): HelperReply {
  const r = new SshReader(body.subarray(1), body[0]);
  let reply: HelperReply;
  switch (body[0]) {
    case HELPER_MSG.KEYS: {
      const n = r.uint32();
      if (n > r.remaining / 8) r.fail('key count exceeds message size');
      const keys: Array<{ blob: Buffer; label: string }> = [];
      for (let i = 0; i < n; i++) keys.push({ blob: Buffer.from(r.string()), label: r.text() });
      reply = { type: 'keys', keys };
      break;
    }
    case HELPER_MSG.SIGNATURE:
      reply = { type: 'signature', signature: Buffer.from(r.string()) };
      break;
    case HELPER_MSG.FAILURE:
      reply = { type: 'failure', reason: r.text() };
      break;
    default:
      throw new ProtocolError(`unknown helper reply ${body[0]}`);
  }
  r.end();
  return reply;
}
