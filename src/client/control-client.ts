/**
 * The `tsagent` commands' side of the control socket (POLICY.md §5, protocol in
 * protocol/control.ts): finds `AGENT_SOCKET.ctl` from `--socket PATH` or $SSH_AUTH_SOCK and
 * sends one request per call, with a bounded wait.
 */
import { lstatSync } from 'node:fs';
import { connect } from 'node:net';
import { AgentNotPresentError, AgentTimeoutError, ControlError } from '../errors';
import {
  CONTROL_PROTOCOL_VERSION,
  LineSplitter,
  controlSocketPath,
  decodeControlResponse,
  encodeControlLine,
} from '../protocol/control';
import type { JsonValue } from '../protocol/control';

/** Commands answer at once except unlock-key (key derivation) and reload (reads files). */
const DEFAULT_TIMEOUT_MS = 30_000;

/** A command's error as the daemon reported it (code is the daemon's AgentError code). */
export class ControlCommandError extends ControlError {
  constructor(
    readonly remoteCode: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The control socket for `--socket PATH` (the agent socket, or the .ctl path itself) or
 * $SSH_AUTH_SOCK. Throws when there is no agent or the agent has no control socket.
 */
export function findControlSocket(socket: string | undefined, env: NodeJS.ProcessEnv): string {
  const agent = socket ?? env.SSH_AUTH_SOCK;
  if (agent === undefined || agent === '')
    throw new AgentNotPresentError('no agent: SSH_AUTH_SOCK is not set (or give --socket PATH)');
  const ctl = agent.endsWith('.ctl') ? agent : controlSocketPath(agent);
  let isSocket = false;
  try {
    isSocket = lstatSync(ctl).isSocket();
  } catch {
    /* missing */
  }
  if (!isSocket) {
    throw new ControlError(`the agent at ${agent} has no control socket (${ctl}): it is not tsagent, or an older one`);
  }
  return ctl;
}

let nextId = 1;

/** Sends one command and resolves with its result; rejects with ControlCommandError when the daemon says no. */
export function controlRequest(
  path: string,
  command: string,
  args: { readonly [k: string]: JsonValue } = {},
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<JsonValue> {
  const id = nextId++;
  return new Promise<JsonValue>((resolve, reject) => {
    const sock = connect(path);
    const lines = new LineSplitter(16 * 1024 * 1024);
    let settled = false;
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      lines.clear();
      sock.destroy();
      f();
    };
    const timer = setTimeout(
      () => finish(() => reject(new AgentTimeoutError(`no answer from ${path} within ${timeoutMs} ms`))),
      timeoutMs,
    );
    sock.once('connect', () => {
      const line = encodeControlLine({ v: CONTROL_PROTOCOL_VERSION, id, command, args });
      sock.write(line, () => line.fill(0));
    });
    sock.on('data', (chunk: Buffer) => {
      const got = lines.push(chunk);
      if (got === undefined) return finish(() => reject(new ControlError('answer too long')));
      for (const l of got) {
        const res = decodeControlResponse(l);
        if (typeof res === 'string') return finish(() => reject(new ControlError(`bad answer from ${path}: ${res}`)));
        if (res.id !== id) continue;
        if (res.ok) return finish(() => resolve(res.result));
        return finish(() => reject(new ControlCommandError(res.error.code, res.error.message)));
      }
      return undefined;
    });
    sock.on('error', (err: NodeJS.ErrnoException) =>
      finish(() => reject(new ControlError(`cannot reach ${path}: ${err.code ?? err.message}`))),
    );
    sock.on('close', () => finish(() => reject(new ControlError(`${path} closed the connection without an answer`))));
  });
}
