/**
 * The human-readable `note` of a recorded fixture (test/fixtures/messages/manifest.json):
 * message number and OpenSSH's name for it, then what the body holds (key type, comment,
 * constraints, flags, signature algorithm...). Decoding every body through the project's
 * codec doubles as a check that each recorded frame parses.
 */
import { ASSOCIATED_CERTS, RESTRICT_DESTINATION, SK_PROVIDER } from '../../src/protocol/constraints';
import type { Constraint } from '../../src/protocol/constraints';
import { decodeRequest, decodeResponse } from '../../src/protocol/codec';
import { MSG } from '../../src/protocol/messages';
import type { Request, Response } from '../../src/protocol/messages';
import { QUERY } from '../../src/protocol/query';
import { SESSION_BIND, decodeSessionBind } from '../../src/protocol/session-bind';
import { SshReader } from '../../src/protocol/wire';

export type Direction = 'request' | 'response';

/** SSH1's REQUEST_RSA_IDENTITIES: no longer part of the protocol (not in MSG); sent by hand. */
export const LEGACY_REQUEST_RSA_IDENTITIES = 1;

/** OpenSSH's names (authfd.h), as the notes print them. */
const LABEL: ReadonlyMap<number, string> = new Map([
  [LEGACY_REQUEST_RSA_IDENTITIES, 'SSH_AGENTC_REQUEST_RSA_IDENTITIES (legacy)'],
  [MSG.FAILURE, 'SSH_AGENT_FAILURE'],
  [MSG.SUCCESS, 'SSH_AGENT_SUCCESS'],
  [MSG.REMOVE_ALL_RSA_IDENTITIES, 'SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES (legacy)'],
  [MSG.REQUEST_IDENTITIES, 'SSH2_AGENTC_REQUEST_IDENTITIES'],
  [MSG.IDENTITIES_ANSWER, 'SSH2_AGENT_IDENTITIES_ANSWER'],
  [MSG.SIGN_REQUEST, 'SSH2_AGENTC_SIGN_REQUEST'],
  [MSG.SIGN_RESPONSE, 'SSH2_AGENT_SIGN_RESPONSE'],
  [MSG.ADD_IDENTITY, 'SSH2_AGENTC_ADD_IDENTITY'],
  [MSG.REMOVE_IDENTITY, 'SSH2_AGENTC_REMOVE_IDENTITY'],
  [MSG.REMOVE_ALL_IDENTITIES, 'SSH2_AGENTC_REMOVE_ALL_IDENTITIES'],
  [MSG.LOCK, 'SSH_AGENTC_LOCK'],
  [MSG.UNLOCK, 'SSH_AGENTC_UNLOCK'],
  [MSG.ADD_ID_CONSTRAINED, 'SSH2_AGENTC_ADD_ID_CONSTRAINED'],
  [MSG.EXTENSION, 'SSH_AGENTC_EXTENSION'],
  [MSG.EXTENSION_FAILURE, 'SSH_AGENT_EXTENSION_FAILURE'],
  [MSG.EXTENSION_RESPONSE, 'SSH_AGENT_EXTENSION_RESPONSE'],
]);

/** The key (or signature) type: the first string of an SSH blob. */
function typeOf(blob: Buffer): string {
  return new SshReader(blob).text();
}

function constraintNote(c: Constraint): string {
  switch (c.type) {
    case 'lifetime':
      return `lifetime ${c.seconds}s`;
    case 'confirm':
      return 'confirm';
    case 'restrict-destination':
      return `extension ${RESTRICT_DESTINATION}`;
    case 'associated-certs':
      return `extension ${ASSOCIATED_CERTS}`;
    case 'sk-provider':
      return `extension ${SK_PROVIDER}`;
  }
}

function requestParts(req: Request): string[] {
  switch (req.type) {
    case 'add-identity': {
      const parts = [`key ${req.key.type}, comment "${req.comment}"`];
      if (req.constraints.length > 0) parts.push(`constraints: ${req.constraints.map(constraintNote).join(', ')}`);
      return parts;
    }
    case 'sign':
      return [`key ${typeOf(req.keyBlob)}, ${req.data.length} data bytes, flags ${req.flags}`];
    case 'remove-identity':
      return [`key ${typeOf(req.keyBlob)}`];
    case 'lock':
    case 'unlock':
      return [`passphrase of ${req.passphrase.length} bytes`];
    case 'extension': {
      const parts = [`"${req.name}"`];
      if (req.name === SESSION_BIND) {
        const b = decodeSessionBind(req.contents);
        parts.push(
          `hostkey ${typeOf(b.hostKey)}, session_id ${b.sessionId.length} bytes, signature ${typeOf(b.signature)}, is_forwarding ${b.isForwarding ? 1 : 0}`,
        );
      }
      return parts;
    }
    case 'add-smartcard-key': {
      const parts = [`provider "${req.provider}", pin of ${req.pin.length} bytes`];
      if (req.constraints.length > 0) parts.push(`constraints: ${req.constraints.map(constraintNote).join(', ')}`);
      return parts;
    }
    case 'remove-smartcard-key':
      return [`provider "${req.provider}"`];
    case 'unsupported':
      return req.body.length > 0 ? [`(${req.body.length} trailing bytes)`] : [];
    case 'request-identities':
    case 'remove-all-identities':
      return [];
  }
}

function responseParts(resp: Response): string[] {
  switch (resp.type) {
    case 'identities': {
      const n = resp.identities.length;
      const keys = resp.identities.map((id) => `${typeOf(id.blob)} "${id.comment}"`);
      return [`${n} keys${n > 0 ? `: ${keys.join('; ')}` : ''}`];
    }
    case 'sign-response': {
      const r = new SshReader(resp.signature);
      const alg = r.text();
      return [`signature ${alg}, ${r.string().length} bytes`];
    }
    case 'extension-response': {
      const r = new SshReader(resp.contents);
      const name = r.text();
      const parts = [`"${name}"`];
      if (name === QUERY) {
        const names: string[] = [];
        while (!r.atEnd) names.push(r.text());
        parts.push(`extensions [${names.join(', ')}]`);
      }
      return parts;
    }
    case 'failure':
    case 'success':
    case 'extension-failure':
      return [];
  }
}

/** "<type> <OpenSSH name>, <what the body holds>" for one request or reply body. */
export function describeMessage(body: Buffer, direction: Direction): string {
  const t = body[0] ?? -1;
  const head = `${t} ${LABEL.get(t) ?? `unknown(${t})`}`;
  try {
    const parts = direction === 'request' ? requestParts(decodeRequest(body)) : responseParts(decodeResponse(body));
    return [head, ...parts].join(', ');
  } catch (e: unknown) {
    return `${head}, (unparsed: ${e instanceof Error ? e.message : String(e)})`;
  }
}
