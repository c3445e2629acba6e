/**
 * The daemon's logger: pino, JSON lines on stderr — loaded off the start path.
 *
 * Why a facade: requiring pino costs ~30 ms of a ~100 ms start (issue 16), and a daemon at
 * the default level logs one line ("listening") before it can serve. Calls below the level
 * are no-ops that never load pino; enabled calls are queued and handed to pino DRAIN_DELAY_MS
 * later, once the socket is listening and the request that started a socket-activated agent
 * (or the first `ssh-add` after `tsagent start -D`) has been served: loading pino blocks the
 * event loop, and nothing is waiting for the "listening" line. Lines still queued when the
 * process exits are written then. `error` and `fatal` load pino at once and write
 * synchronously.
 *
 * Redaction is a second fence: no code path logs key material, but should a field with one of
 * these names ever slip into a log object, pino replaces its value.
 */
import type { Logger as PinoLogger } from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** A log call: `log({ fields }, 'message')` or `log('message')`, as with pino. */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/**
 * The logger every module takes: a subset of pino's Logger with the same call shapes, so a
 * library user may pass a pino logger of their own.
 */
export interface Logger {
  readonly level: string;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  isLevelEnabled(level: string): boolean;
  /** A logger whose lines also carry `bindings`. */
  child(bindings: object): Logger;
}

type Method = Exclude<LogLevel, 'silent'>;

const LEVELS: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

const REDACT = [
  'passphrase',
  'secret',
  'privateKey',
  'key',
  'd',
  'p',
  'q',
  'iqmp',
  'data',
  '*.passphrase',
  '*.secret',
  '*.privateKey',
  '*.key',
  '*.data',
];

/** How long queued lines wait before pino is loaded for them (see the header). */
export const DRAIN_DELAY_MS = 50;

/** One pino instance per createLogger, built on first use; children are made from it then. */
class LazyPino {
  private pino: PinoLogger | undefined;
  private readonly queue: Array<() => void> = [];
  private scheduled = false;
  private drainsAtExit = false;

  constructor(
    private readonly level: LogLevel,
    private readonly destination: number | NodeJS.WritableStream,
  ) {}

  get(): PinoLogger {
    if (this.pino === undefined) {
      const pino = require('pino') as typeof import('pino');
      const dest =
        typeof this.destination === 'number' ? pino.destination({ dest: this.destination, sync: true }) : this.destination;
      this.pino = pino.pino(
        { level: this.level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } },
        dest,
      );
    }
    return this.pino;
  }

  /** Runs `write` against pino: now for errors (and once loaded), else on the next turn. */
  submit(write: (p: PinoLogger) => void, urgent: boolean): void {
    if (this.pino !== undefined || urgent) {
      this.drain();
      write(this.get());
      return;
    }
    this.queue.push(() => write(this.get()));
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => this.drain(), DRAIN_DELAY_MS).unref();
      // A process that exits sooner (SIGTERM right after start) still writes its lines.
      if (!this.drainsAtExit) {
        this.drainsAtExit = true;
        process.once('exit', () => this.drain());
      }
    }
  }

  private drain(): void {
    this.scheduled = false;
    for (const w of this.queue.splice(0)) w();
  }
}

function makeLogger(level: LogLevel, lazy: LazyPino | undefined, path: readonly object[]): Logger {
  const threshold = LEVELS[level];
  const noop: LogFn = () => undefined;
  // A child's pino logger, derived once from the root's when first written to.
  let mine: PinoLogger | undefined;
  const target = (root: PinoLogger): PinoLogger => (mine ??= path.reduce<PinoLogger>((l, b) => l.child(b), root));
  const at = (name: Method): LogFn => {
    if (lazy === undefined || LEVELS[name] < threshold) return noop;
    const urgent = LEVELS[name] >= LEVELS.error;
    return (a: object | string, msg?: string): void => {
      lazy.submit((root) => {
        const l = target(root);
        if (typeof a === 'string') l[name](a);
        else l[name](a, msg);
      }, urgent);
    };
  };
  return {
    level,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    isLevelEnabled: (l) => l !== 'silent' && (LEVELS[l as LogLevel] ?? Infinity) >= threshold,
    child: (b) => makeLogger(level, lazy, [...path, b]),
  };
}

export function createLogger(level: LogLevel, destination: number | NodeJS.WritableStream = 2): Logger {
  return makeLogger(level, level === 'silent' ? undefined : new LazyPino(level, destination), []);
}

/** A logger that drops everything (library use, background mode without -d). */
export function silentLogger(): Logger {
  return makeLogger('silent', undefined, []);
}
