/**
 * One connection to the D-Bus session bus, made with @homebridge/dbus-native (pure JS, no
 * install scripts, maintained, runs on Node 20). The library is required only when the first
 * prompt needs the bus, so agent startup never loads it.
 *
 * We open the socket ourselves from DBUS_SESSION_BUS_ADDRESS (unix:path= and unix:abstract=
 * only) and hand the library the stream: its own address parser would also follow `unixexec:`
 * (run a program) and `tcp:` addresses, which an agent has no business doing.
 *
 * Every call is bounded by a timeout; when the socket ends or errs, or what arrives on it does
 * not parse, every waiting call fails and the session reports itself closed, so the owner
 * simply opens a new one next time. Nothing the other end sends can throw out of an event
 * handler (see GuardedStream).
 */
import { EventEmitter } from 'node:events';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';

/** A D-Bus message as the library represents it (only the fields we read or write). */
export interface DbusMessage {
  readonly type: number;
  readonly serial?: number;
  readonly sender?: string;
  readonly destination?: string;
  readonly path?: string;
  readonly interface?: string;
  readonly member?: string;
  readonly signature?: string;
  readonly body?: readonly unknown[];
}

interface DbusError {
  readonly name?: string;
  readonly message?: string;
}

/** What we use of the library's MessageBus. Its bundled typings type these as `any`. */
interface LibBus {
  readonly connection: {
    on(event: 'message', listener: (msg: DbusMessage) => void): void;
    on(event: 'error' | 'end' | 'connect', listener: (err?: unknown) => void): void;
  };
  invoke(
    msg: { destination: string; path: string; interface: string; member: string; signature?: string; body?: readonly unknown[] },
    callback: (this: { message?: DbusMessage }, err: DbusError | Error | null, ...values: unknown[]) => void,
  ): void;
}

interface LibModule {
  createClient(options: { stream: GuardedStream }): LibBus;
}

/**
 * Notification traffic is a few hundred bytes a message. A peer on the other end of the
 * socket that claims more (the library would try to allocate whatever a header says) or
 * that never ends a handshake line is not a bus we want.
 */
const MAX_BUFFERED_BYTES = 1 << 20;
/** The authentication exchange is a few short lines (the library keeps a line without bound). */
const MAX_HANDSHAKE_BYTES = 16 << 10;

/**
 * The stream the library reads, fed by us from the socket. The library parses inside its
 * 'readable' listener, so a malformed message would throw out of an event handler and take
 * the agent down; here every 'readable' is emitted inside a try, a parse error closes the
 * session instead, and nothing buffered or requested can exceed MAX_BUFFERED_BYTES.
 */
class GuardedStream extends EventEmitter {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes received in all. */
  received = 0;

  constructor(private readonly socket: Socket) {
    super();
  }

  /** Adds bytes from the socket and lets the library parse them; false when it failed. */
  feed(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.received += chunk.length;
    if (this.size > MAX_BUFFERED_BYTES) return false;
    try {
      this.emit('readable');
      return true;
    } catch {
      return false;
    }
  }

  /** stream.Readable#read(n) as the library uses it: n bytes, or null until there are n. */
  read(n: number): Buffer | null {
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_BUFFERED_BYTES) throw new RangeError('D-Bus message too large');
    if (this.size < n) return null;
    const all = this.chunks.length === 1 ? (this.chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.chunks);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return all.subarray(0, n);
  }

  write(data: Buffer | string): boolean {
    return this.socket.write(data);
  }

  end(): this {
    this.socket.end();
    return this;
  }

  setNoDelay(): this {
    return this;
  }
}

const SIGNAL = 4;

let lib: LibModule | undefined;
function loadLib(): LibModule {
  // Lazy on purpose (see the module comment): ~30 ms of require time on first use only.
  lib ??= require('@homebridge/dbus-native') as LibModule;
  return lib;
}

/**
 * The socket path a session bus address names (D-Bus spec "Server Addresses"): the first
 * `unix:path=` or `unix:abstract=` entry of a `;`-separated list, values %-decoded; an
 * abstract name becomes Node's "\0name" path. Null when there is none we will use.
 */
export function busSocketPath(address: string | undefined): string | null {
  if (address === undefined || address === '') return null;
  for (const entry of address.split(';')) {
    const colon = entry.indexOf(':');
    if (colon < 0 || entry.slice(0, colon) !== 'unix') continue;
    const params = new Map<string, string>();
    for (const kv of entry.slice(colon + 1).split(',')) {
      const eq = kv.indexOf('=');
      if (eq <= 0) continue;
      try {
        params.set(kv.slice(0, eq), decodeURIComponent(kv.slice(eq + 1)));
      } catch {
        /* a bad %-escape: not an address we can use */
      }
    }
    const path = params.get('path');
    if (path !== undefined && path !== '') return path;
    const abstract = params.get('abstract');
    if (abstract !== undefined && abstract !== '') return `\0${abstract}`;
  }
  return null;
}

/**
 * The session bus socket: DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus, where a
 * systemd user manager's bus lives (sd-bus looks there too) — so a `tsagent` user service
 * reaches the bus even when its unit's environment lacks the address.
 */
export function sessionBusPath(env: NodeJS.ProcessEnv): string | null {
  const address = env.DBUS_SESSION_BUS_ADDRESS;
  if (address !== undefined && address !== '') return busSocketPath(address);
  const runtime = env.XDG_RUNTIME_DIR;
  return runtime !== undefined && runtime.startsWith('/') ? `${runtime.replace(/\/+$/, '')}/bus` : null;
}

export class DbusCallError extends Error {
  constructor(
    message: string,
    readonly dbusName: string | null,
  ) {
    super(message);
    this.name = 'DbusCallError';
  }
}

export interface CallTarget {
  readonly destination: string;
  readonly path: string;
  readonly interface: string;
}

export interface CallReply {
  readonly body: readonly unknown[];
  /** Unique name of the replying connection (":1.42"): the only sender its signals may have. */
  readonly sender: string | null;
}

export class DbusSession {
  private readonly socket: Socket;
  private readonly bus: LibBus;
  private readonly waiting = new Set<(err: Error) => void>();
  private readonly signalListeners = new Set<(msg: DbusMessage) => void>();
  private closedFlag = false;

  /** Opens the bus at `socketPath`; the handshake runs in the background (calls wait for it). */
  constructor(
    socketPath: string,
    private readonly callTimeoutMs: number,
    private readonly onClose: () => void,
  ) {
    this.socket = createConnection(socketPath);
    // An idle bus connection must not keep the process (a test, a CLI) alive.
    this.socket.unref();
    this.socket.once('close', () => this.close());
    this.socket.on('error', () => this.close());
    const stream = new GuardedStream(this.socket);
    let authenticated = false;
    this.socket.on('data', (chunk: Buffer) => {
      if (this.closedFlag) return;
      if (!stream.feed(chunk) || (!authenticated && stream.received > MAX_HANDSHAKE_BYTES)) this.close();
    });
    this.bus = loadLib().createClient({ stream });
    this.bus.connection.on('connect', () => (authenticated = true));
    this.bus.connection.on('error', () => this.close());
    this.bus.connection.on('end', () => this.close());
    this.bus.connection.on('message', (msg) => {
      if (msg.type !== SIGNAL) return;
      for (const listener of this.signalListeners) listener(msg);
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  onSignal(listener: (msg: DbusMessage) => void): () => void {
    this.signalListeners.add(listener);
    return () => this.signalListeners.delete(listener);
  }

  /**
   * Calls a method; resolves with the reply. `onReply` runs synchronously as the reply is
   * dispatched, before any later message (e.g. a signal about what the call created) is.
   */
  call(
    target: CallTarget,
    member: string,
    signature: string | undefined,
    body: readonly unknown[],
    onReply?: (reply: CallReply) => void,
  ): Promise<CallReply> {
    if (this.closedFlag) return Promise.reject(new DbusCallError('the session bus connection is closed', null));
    return new Promise<CallReply>((resolve, reject) => {
      let done = false;
      const fail = (err: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.waiting.delete(fail);
        reject(err);
      };
      const timer = setTimeout(() => {
        fail(new DbusCallError(`${member}: no reply within ${this.callTimeoutMs} ms`, null));
        // A bus that does not answer is as good as gone; start afresh next time.
        this.close();
      }, this.callTimeoutMs);
      timer.unref();
      this.waiting.add(fail);
      const msg = { ...target, member, body, ...(signature !== undefined ? { signature } : {}) };
      const waiting = this.waiting;
      this.bus.invoke(msg, function (this: { message?: DbusMessage }, err: DbusError | Error | null, ...values: unknown[]) {
        if (done) return;
        if (err !== null && err !== undefined) {
          fail(
            new DbusCallError(
              `${member}: ${err.message ?? 'error reply'}`,
              'name' in err && typeof err.name === 'string' ? err.name : null,
            ),
          );
          return;
        }
        done = true;
        clearTimeout(timer);
        waiting.delete(fail);
        const reply: CallReply = { body: values, sender: this.message?.sender ?? null };
        try {
          onReply?.(reply);
        } finally {
          resolve(reply);
        }
      });
    });
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.socket.destroy();
    const err = new DbusCallError('the session bus connection closed', null);
    for (const fail of [...this.waiting]) fail(err);
    this.signalListeners.clear();
    this.onClose();
  }
}
