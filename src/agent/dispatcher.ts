/**
 * Request -> response for any Agent (RFC 9987 §5). No sockets here: the server feeds it
 * decoded requests; tests and fuzzers call it directly. Every failure becomes a reply:
 * EXTENSION_FAILURE (28) for a known extension that failed, FAILURE (5) for all else.
 */
import type { Logger } from 'pino';
import { AgentError, ExtensionFailureError } from '../errors';
import { FAILURE, SUCCESS } from '../protocol/messages';
import type { Request, Response } from '../protocol/messages';
import type { Agent, RequestContext } from './agent';

export async function dispatch(agent: Agent, req: Request, ctx: RequestContext, logger?: Logger): Promise<Response> {
  try {
    switch (req.type) {
      case 'request-identities':
        return { type: 'identities', identities: await agent.list(ctx) };
      case 'sign':
        return { type: 'sign-response', signature: await agent.sign(req.keyBlob, req.data, req.flags, ctx) };
      case 'add-identity':
        await agent.add({ key: req.key, comment: req.comment, constraints: req.constraints }, ctx);
        return SUCCESS;
      case 'remove-identity':
        await agent.remove(req.keyBlob, ctx);
        return SUCCESS;
      case 'remove-all-identities':
        await agent.removeAll(ctx);
        return SUCCESS;
      case 'lock':
        await agent.lock(req.passphrase, ctx);
        return SUCCESS;
      case 'unlock':
        await agent.unlock(req.passphrase, ctx);
        return SUCCESS;
      case 'extension':
        return await agent.extension(req.name, req.contents, ctx);
      case 'unsupported':
        logger?.debug({ conn: ctx.connectionId, messageType: req.messageType }, 'unsupported request');
        return FAILURE;
    }
  } catch (err) {
    if (err instanceof AgentError) {
      logger?.debug({ conn: ctx.connectionId, request: req.type, error: err.name, reason: err.message }, 'request failed');
      return err instanceof ExtensionFailureError ? { type: 'extension-failure' } : FAILURE;
    }
    // A bug, not bad input: say so loudly, but still answer and keep serving. Only the
    // error's class and message are logged; neither carries request bytes.
    const e = err instanceof Error ? err : new Error(String(err));
    logger?.error({ conn: ctx.connectionId, request: req.type, error: e.name, reason: e.message }, 'internal error');
    return FAILURE;
  }
}
