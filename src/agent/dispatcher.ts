/**
 * Request -> response for any Agent (RFC 9987 §5). No sockets here: the server feeds it
 * decoded requests; tests and fuzzers call it directly. Every failure becomes a reply:
 * EXTENSION_FAILURE (28) for a known extension that failed, FAILURE (5) for all else.
 */
import type { Logger } from '../log';
import { AgentError, AgentFailureError, ExtensionFailureError } from '../errors';
import { FAILURE, SUCCESS } from '../protocol/messages';
import type { Request, Response } from '../protocol/messages';
import type { Agent } from './agent';
import type { AgentSession } from './session';

/**
 * The reply to a request the agent refused (an AgentError: bad input, locked, unknown key, a
 * failed extension…), logged at debug. Shared with the keyring's synchronous answers, which
 * must reply and log exactly as this path does.
 */
export function refusalReply(err: AgentError, request: Request['type'], session: AgentSession, logger?: Logger): Response {
  logger?.debug({ conn: session.connectionId, request, error: err.name, reason: err.message }, 'request failed');
  return err instanceof ExtensionFailureError ? { type: 'extension-failure' } : FAILURE;
}

export async function dispatch(agent: Agent, req: Request, session: AgentSession, logger?: Logger): Promise<Response> {
  try {
    switch (req.type) {
      case 'request-identities':
        return { type: 'identities', identities: await agent.list(session) };
      case 'sign':
        return { type: 'sign-response', signature: await agent.sign(req.keyBlob, req.data, req.flags, session) };
      case 'add-identity':
        await agent.add({ key: req.key, comment: req.comment, constraints: req.constraints }, session);
        return SUCCESS;
      case 'remove-identity':
        await agent.remove(req.keyBlob, session);
        return SUCCESS;
      case 'remove-all-identities':
        await agent.removeAll(session);
        return SUCCESS;
      case 'lock':
        await agent.lock(req.passphrase, session);
        return SUCCESS;
      case 'unlock':
        await agent.unlock(req.passphrase, session);
        return SUCCESS;
      case 'extension':
        return await agent.extension(req.name, req.contents, session);
      case 'add-smartcard-key':
        if (agent.addSmartcardKey === undefined) throw new AgentFailureError('smartcard keys are not supported');
        await agent.addSmartcardKey({ provider: req.provider, pin: req.pin, constraints: req.constraints }, session);
        return SUCCESS;
      case 'remove-smartcard-key':
        if (agent.removeSmartcardKey === undefined) throw new AgentFailureError('smartcard keys are not supported');
        await agent.removeSmartcardKey(req.provider, session);
        return SUCCESS;
      case 'unsupported':
        logger?.debug({ conn: session.connectionId, messageType: req.messageType }, 'unsupported request');
        return FAILURE;
    }
  } catch (err) {
    if (err instanceof AgentError) return refusalReply(err, req.type, session, logger);
    // A bug, not bad input: say so loudly, but still answer and keep serving. Only the
    // error's class and message are logged; neither carries request bytes.
    const e = err instanceof Error ? err : new Error(String(err));
    logger?.error({ conn: session.connectionId, request: req.type, error: e.name, reason: e.message }, 'internal error');
    return FAILURE;
  }
}
