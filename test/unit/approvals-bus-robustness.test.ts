/**
 * Whatever answers on the session bus socket, the notification method fails closed: the
 * method is unavailable, the process does not crash (a parse error inside the D-Bus
 * library's event handler would be an uncaught exception), and nothing grows without bound.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { NotificationChannel } from '../../src/approvals/notification';
import { removeDir, tempDir } from '../helpers/proc';

const AUTH_OK = 'OK 0123456789abcdef0123456789abcdef\r\n';

/** A Unix socket server that authenticates like a bus, then sends `after(socket)`. */
async function fakeBus(
  dir: string,
  name: string,
  onBegin: (s: Socket) => void,
  beforeAuth?: (s: Socket) => void,
): Promise<{ address: string; server: Server }> {
  const path = join(dir, name);
  const server = createServer((s) => {
    s.on('error', () => undefined);
    if (beforeAuth !== undefined) {
      beforeAuth(s);
      return;
    }
    s.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      if (text.includes('AUTH')) s.write(AUTH_OK);
      if (text.includes('BEGIN')) onBegin(s);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { address: `unix:path=${path}`, server };
}

const REQUEST = { id: 'x', text: { summary: 's', lines: ['a'], text: 's' }, rememberLabel: '1 min', timeoutMs: 1000 };

test('garbage, oversized headers, random bytes and endless lines from the bus: unavailable, no crash', async (t) => {
  const dir = await tempDir('tsagent-fakebus-');
  t.after(() => removeDir(dir));
  const cases: [string, (s: Socket) => void, ((s: Socket) => void)?][] = [
    ['huge', (s) => s.write(Buffer.from('l\x01\x00\x01\xff\xff\xff\x7f\x01\x00\x00\x00', 'latin1'))],
    [
      'bad-fields',
      (s) =>
        s.write(
          Buffer.concat([
            Buffer.from('l\x02\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x20\x00\x00\x00', 'latin1'),
            randomBytes(32),
          ]),
        ),
    ],
    ['random', (s) => s.write(randomBytes(4096))],
    ['silent', () => undefined],
    [
      'endless-line',
      () => undefined,
      (s) => {
        const junk = Buffer.alloc(64 << 10, 0x78);
        const pump = (): void => {
          if (!s.destroyed && s.write(junk)) setImmediate(pump);
        };
        s.on('drain', pump);
        pump();
      },
    ],
  ];
  for (const [name, onBegin, beforeAuth] of cases) {
    const { address, server } = await fakeBus(dir, name, onBegin, beforeAuth);
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const channel = new NotificationChannel({ env: { DBUS_SESSION_BUS_ADDRESS: address }, callTimeoutMs: 1500 });
    assert.equal(await channel.show(REQUEST), null, name);
    channel.close();
  }
});
