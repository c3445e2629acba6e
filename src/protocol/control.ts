/**
 * The control socket's protocol (POLICY.md §5), shared by the daemon (server/control-socket)
 * and the `tsagent` commands (client/control-client). Pure: no I/O.
 *
 * Line-delimited JSON over the Unix socket `AGENT_SOCKET.ctl`. The client writes one request
 * per line and reads one response line per request, in order; it may send several requests
 * on one connection. Lines are UTF-8 JSON objects ending in "\n", at most 64 KiB.
 *
 *   request:  {"v":1,"id":7,"command":"status","args":{}}
 *   success:  {"v":1,"id":7,"ok":true,"result":<command's JSON>}
 *   failure:  {"v":1,"id":7,"ok":false,"error":{"code":"CONFIG","message":"config.toml:3: …"}}
 *
 * `id` is the client's (a number echoed back). `command` names a handler the daemon
 * registered: `status`, `keys`, `reload`, `unlock-key` (args {name, passphrase}: the
 * passphrase base64, so it survives as bytes), and later `approvals`, `approve`, … An
 * unknown command, a malformed line or bad args answer `ok:false` with code `USAGE`; a line
 * too long closes the connection. Results are the exact `--json` shapes of POLICY.md §5.
 */

export const CONTROL_PROTOCOL_VERSION = 1;
export const CONTROL_MAX_LINE_BYTES = 64 * 1024;
/** Appended to the agent socket's path. */
export const CONTROL_SOCKET_SUFFIX = '.ctl';

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [k: string]: JsonValue };

export interface ControlRequest {
  readonly v: number;
  readonly id: number;
  readonly command: string;
  readonly args: { readonly [k: string]: JsonValue };
}

export type ControlResponse =
  | { readonly v: number; readonly id: number; readonly ok: true; readonly result: JsonValue }
  | {
      readonly v: number;
      readonly id: number;
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string };
    };

/** `tsagent status --json`. */
export interface StatusJson {
  readonly pid: number;
  readonly socket: string;
  readonly control: string;
  readonly config: string | null;
  readonly keys: { readonly held: number; readonly registered: number };
  readonly locked: boolean;
  readonly uptimeSeconds: number;
}

/** One element of `tsagent keys --json`. */
export interface KeyJson {
  readonly name: string | null;
  readonly comment: string;
  readonly fingerprint: string;
  readonly type: string;
  readonly source: 'config' | 'added' | 'pkcs11';
  readonly loaded: boolean;
  readonly hosts: readonly string[] | null;
  readonly confirm: boolean;
  /** Seconds, or null. */
  readonly lifetimeLeft: number | null;
  /** ISO time, or null. */
  readonly lastUsed: string | null;
}

export function controlSocketPath(agentSocket: string): string {
  return agentSocket + CONTROL_SOCKET_SUFFIX;
}

export function encodeControlLine(msg: ControlRequest | ControlResponse): Buffer {
  return Buffer.from(`${JSON.stringify(msg)}\n`, 'utf8');
}

function isObject(v: unknown): v is { readonly [k: string]: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The line's JSON object, or a message saying why there is none. */
function jsonObject(line: Buffer): { readonly [k: string]: unknown } | string {
  let v: unknown;
  try {
    v = JSON.parse(line.toString('utf8'));
  } catch {
    return 'not a JSON line';
  }
  return isObject(v) ? v : 'not a JSON object';
}

/** A request line, or a message saying why it is not one. */
export function decodeControlRequest(line: Buffer): ControlRequest | string {
  const v = jsonObject(line);
  if (typeof v === 'string') return v;
  if (v.v !== CONTROL_PROTOCOL_VERSION) return `unsupported protocol version ${JSON.stringify(v.v)}`;
  if (typeof v.id !== 'number' || !Number.isSafeInteger(v.id)) return 'id must be an integer';
  if (typeof v.command !== 'string' || !/^[a-z][a-z-]{0,31}$/.test(v.command)) return 'command must be a short lowercase word';
  const args = v.args ?? {};
  if (!isObject(args)) return 'args must be an object';
  return { v: CONTROL_PROTOCOL_VERSION, id: v.id, command: v.command, args: args as ControlRequest['args'] };
}

export function decodeControlResponse(line: Buffer): ControlResponse | string {
  const v = jsonObject(line);
  if (typeof v === 'string') return v;
  if (typeof v.id !== 'number' || typeof v.ok !== 'boolean') return 'not a control response';
  if (v.ok) return { v: CONTROL_PROTOCOL_VERSION, id: v.id, ok: true, result: (v.result ?? null) as JsonValue };
  const e = v.error;
  if (!isObject(e) || typeof e.code !== 'string' || typeof e.message !== 'string') return 'not a control response';
  return { v: CONTROL_PROTOCOL_VERSION, id: v.id, ok: false, error: { code: e.code, message: e.message } };
}

/**
 * Splits a byte stream into lines. `push` returns the complete lines so far, or undefined
 * when a line exceeds the cap (the connection should then be closed).
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private size = 0;

  constructor(private readonly max = CONTROL_MAX_LINE_BYTES) {}

  push(chunk: Buffer): Buffer[] | undefined {
    const lines: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const part = chunk.subarray(start, nl);
      if (this.size + part.length > this.max) return undefined;
      lines.push(this.pending.length === 0 ? Buffer.from(part) : Buffer.concat([...this.pending, part]));
      this.clear();
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    if (this.size + rest.length > this.max) return undefined;
    if (rest.length > 0) {
      this.pending.push(Buffer.from(rest));
      this.size += rest.length;
    }
    return lines;
  }

  /** Zeroes and forgets a partial line (it may hold a passphrase). */
  clear(): void {
    for (const b of this.pending) b.fill(0);
    this.pending = [];
    this.size = 0;
  }
}
