/**
 * pino logger for the daemon: JSON lines on stderr. Redaction is a second fence: no code path
 * logs key material, but should a field with one of these names ever slip into a log object
 * its value is replaced.
 */
import pino from 'pino';
import type { Logger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

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

export function createLogger(level: LogLevel, destination: number | NodeJS.WritableStream = 2): Logger {
  const dest = typeof destination === 'number' ? pino.destination({ dest: destination, sync: true }) : destination;
  return pino({ level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } }, dest);
}

/** A logger that drops everything (library use, background mode without -d). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
