/**
 * The daemon's logger: JSON lines on stderr, in pino's line format
 * (`{"level":30,"time":…,"pid":…,…fields,"msg":"…"}`, levels 10-60), written synchronously.
 *
 * Why not pino itself: loading it cost ~30 ms of a ~150 ms start (issue 16), and the agent
 * logs a handful of flat objects. This is the small part of pino the agent uses; the line
 * format is unchanged, so anything that reads the old logs reads these.
 *
 * Redaction is a second fence: no code path logs key material, but should a field with one of
 * these names ever slip into a log object (top level, or one level down) its value is replaced.
 */
import { writeSync } from 'node:fs';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** A log call: `log({ fields }, 'message')` or `log('message')`, as with pino. */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/**
 * The logger every module takes: a subset of pino's Logger with the same call shapes, so a
 * library user may still pass a pino logger.
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
  /** A logger whose lines also carry `bindings` (after pid, before the call's fields). */
  child(bindings: object): Logger;
}

const LEVELS: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

const REDACT_TOP = new Set(['passphrase', 'secret', 'privateKey', 'key', 'd', 'p', 'q', 'iqmp', 'data']);
const REDACT_NESTED = new Set(['passphrase', 'secret', 'privateKey', 'key', 'data']);
const CENSOR = '[redacted]';

type Sink = (line: string) => void;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Error);
}

/** Errors keep their type and message (JSON.stringify would print `{}`), never a stack. */
function plain(v: unknown): unknown {
  return v instanceof Error ? { type: v.name, message: v.message } : v;
}

/** Copies `fields` into `out`, censoring the redacted names (POLICY: secrets never logged). */
function addFields(out: Record<string, unknown>, fields: object): void {
  for (const [k, v] of Object.entries(fields)) {
    if (REDACT_TOP.has(k)) {
      out[k] = CENSOR;
    } else if (isPlainObject(v)) {
      const inner: Record<string, unknown> = {};
      for (const [ik, iv] of Object.entries(v)) inner[ik] = REDACT_NESTED.has(ik) ? CENSOR : plain(iv);
      out[k] = inner;
    } else {
      out[k] = plain(v);
    }
  }
}

function fdSink(fd: number): Sink {
  return (line) => {
    const buf = Buffer.from(line);
    let off = 0;
    // stderr may be a non-blocking pipe: retry a few times on EAGAIN, then drop the rest.
    for (let tries = 0; off < buf.length && tries < 1000; ) {
      try {
        off += writeSync(fd, buf, off);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        tries++;
      }
    }
  };
}

function makeLogger(level: LogLevel, sink: Sink, bindings: readonly object[]): Logger {
  const threshold = LEVELS[level];
  const noop: LogFn = () => undefined;
  const at = (name: Exclude<LogLevel, 'silent'>): LogFn => {
    const n = LEVELS[name];
    if (n < threshold) return noop;
    return (a: object | string, msg?: string): void => {
      const line: Record<string, unknown> = { level: n, time: Date.now(), pid: process.pid };
      for (const b of bindings) addFields(line, b);
      if (typeof a === 'string') {
        line.msg = a;
      } else {
        addFields(line, a);
        if (msg !== undefined) line.msg = msg;
      }
      sink(`${JSON.stringify(line)}\n`);
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
    child: (b) => makeLogger(level, sink, [...bindings, b]),
  };
}

export function createLogger(level: LogLevel, destination: number | NodeJS.WritableStream = 2): Logger {
  const sink: Sink = typeof destination === 'number' ? fdSink(destination) : (line) => void destination.write(line);
  return makeLogger(level, sink, []);
}

/** A logger that drops everything (library use, background mode without -d). */
export function silentLogger(): Logger {
  return makeLogger('silent', () => undefined, []);
}
