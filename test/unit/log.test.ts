/**
 * The daemon's logger is pino behind a lazy facade: pino's JSON line format (level numbers,
 * time, pid, fields, msg), the redacted field names censored at the top level and one level down.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { DRAIN_DELAY_MS, createLogger, silentLogger } from '../../src/log';
import type { LogLevel } from '../../src/log';

/**
 * Lines below `error` reach pino DRAIN_DELAY_MS after they are logged (src/log.ts): a timer
 * set later for longer fires after that one (Node runs timers in expiry order).
 */
const afterDrain = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, DRAIN_DELAY_MS + 1));

function capture(level: LogLevel): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (s: string) => (text += s));
  return {
    logger: createLogger(level, out),
    lines: () =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('log', () => {
  it('writes pino-shaped lines, fields before msg', async () => {
    const { logger, lines } = capture('info');
    logger.info({ socket: '/x', control: undefined }, 'listening');
    logger.warn('plain');
    await afterDrain();
    const [a, b] = lines();
    assert.deepEqual(Object.keys(a), ['level', 'time', 'pid', 'socket', 'msg']);
    assert.equal(a.level, 30);
    assert.equal(a.pid, process.pid);
    assert.equal(typeof a.time, 'number');
    assert.equal(a.msg, 'listening');
    assert.deepEqual({ level: b.level, msg: b.msg }, { level: 40, msg: 'plain' });
  });

  it('drops lines below the level, and everything when silent', async () => {
    const { logger, lines } = capture('info');
    logger.debug({ conn: 1 }, 'hidden');
    assert.equal(logger.isLevelEnabled('debug'), false);
    assert.equal(logger.isLevelEnabled('error'), true);
    await afterDrain();
    assert.deepEqual(lines(), []);
    const s = silentLogger();
    s.error('nothing');
    assert.equal(s.isLevelEnabled('fatal'), false);
  });

  it('censors secret-named fields, top level and one level down', async () => {
    const { logger, lines } = capture('debug');
    logger.debug({ key: 'k', d: 1, data: Buffer.from('x'), nested: { passphrase: 'p', data: 'z', ok: 2 }, reason: 'r' }, 'm');
    await afterDrain();
    const [l] = lines();
    assert.equal(l.key, '[redacted]');
    assert.equal(l.d, '[redacted]');
    assert.equal(l.data, '[redacted]');
    assert.deepEqual(l.nested, { passphrase: '[redacted]', data: '[redacted]', ok: 2 });
    assert.equal(l.reason, 'r');
  });

  it('child loggers carry their bindings; errors are written at once, with type and message', () => {
    const { logger, lines } = capture('info');
    logger.child({ conn: 7 }).error({ err: new TypeError('boom') }, 'failed');
    const [l] = lines();
    assert.equal(l.conn, 7);
    const err = l.err as Record<string, unknown>;
    assert.deepEqual({ type: err.type, message: err.message }, { type: 'TypeError', message: 'boom' });
  });
});
