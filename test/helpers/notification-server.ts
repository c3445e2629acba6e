/**
 * A real D-Bus session bus for a test, and a real org.freedesktop.Notifications service on it.
 *
 * startSessionBus: `dbus-daemon --nofork` with a private config in a temp dir (its own
 * socket, nothing shared with the user's session), killed by pid in stop().
 * startNotificationServer: test/helpers/notification-server.py (python3-dbus, i.e. libdbus) on
 * that bus; it records Notify / CloseNotification calls and invokes actions or closes
 * notifications when told to.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import type { SkipContext } from './peers';
import { PYTHON3, requirePeer, requirePython } from './peers';
import { cleanEnv, removeDir, startDaemon, stopChild, tempDir, waitFor, waitForSocket } from './proc';

const SERVER_PY = resolve(__dirname, '../../../test/helpers/notification-server.py');

export interface SessionBus {
  /** DBUS_SESSION_BUS_ADDRESS of the bus. */
  readonly address: string;
  readonly socketPath: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts a private session bus; undefined (after a skip) when dbus-daemon is missing. */
export async function startSessionBus(t: SkipContext): Promise<SessionBus | undefined> {
  const daemon = requirePeer(t, 'dbus-daemon');
  if (daemon === undefined) return undefined;
  const dir = await tempDir('tsagent-dbus-');
  const socketPath = join(dir, 'bus');
  const config = join(dir, 'session.conf');
  await writeFile(
    config,
    [
      '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"',
      ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">',
      '<busconfig>',
      '  <type>session</type>',
      `  <listen>unix:path=${socketPath}</listen>`,
      '  <auth>EXTERNAL</auth>',
      '  <policy context="default">',
      '    <allow send_destination="*" eavesdrop="true"/>',
      '    <allow eavesdrop="true"/>',
      '    <allow own="*"/>',
      '  </policy>',
      '</busconfig>',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const handle = await startDaemon(daemon, [`--config-file=${config}`, '--nofork', '--nopidfile'], {
    env: cleanEnv(),
    name: 'dbus-daemon',
  });
  try {
    await waitForSocket(socketPath, 10_000, handle);
  } catch (e: unknown) {
    await handle.stop();
    await removeDir(dir);
    throw e;
  }
  return {
    address: `unix:path=${socketPath}`,
    socketPath,
    pid: handle.pid,
    stop: async () => {
      await handle.stop();
      await removeDir(dir);
    },
  };
}

export interface NotifyCall {
  readonly id: number;
  readonly app: string;
  readonly icon: string;
  readonly summary: string;
  readonly body: string;
  readonly actions: readonly string[];
  readonly hints: Readonly<Record<string, unknown>>;
  readonly timeout: number;
}

export interface NotificationServer {
  readonly pid: number;
  /** Every Notify call so far, in order. */
  readonly notifies: NotifyCall[];
  /** Ids passed to CloseNotification so far. */
  readonly closed: number[];
  /** Number of GetCapabilities calls so far. */
  capabilityCalls(): number;
  /** Waits (bounded) until there have been at least `count` Notify calls; returns the last. */
  waitForNotify(count?: number, timeoutMs?: number): Promise<NotifyCall>;
  waitForClose(id: number, timeoutMs?: number): Promise<void>;
  /** The user clicks the button with action key `action`. */
  invoke(id: number, action: string): void;
  /** The user closes the notification without answering. */
  dismiss(id: number): void;
  stop(): Promise<void>;
}

interface ServerEvent {
  readonly event: string;
  readonly id?: number;
}

/** How to run the server: by default python3 itself; `wrap` may run it as another user. */
export interface NotificationServerOptions {
  /** false: a server without the `actions` capability. */
  readonly actions?: boolean;
  /** Turns the python3 command line (with the bus address in `env`) into the one to spawn. */
  readonly wrap?: (cmd: string, args: string[], env: NodeJS.ProcessEnv) => { command: string; args: string[] };
}

/**
 * Registers the notification service on `bus` (`address` only is used); undefined (after a
 * skip) when python3-dbus is missing.
 */
export async function startNotificationServer(
  t: SkipContext,
  bus: Pick<SessionBus, 'address'>,
  opts: NotificationServerOptions = {},
): Promise<NotificationServer | undefined> {
  if (requirePython(t, 'dbus') === undefined) return undefined;
  const busEnv = { DBUS_SESSION_BUS_ADDRESS: bus.address };
  const pyArgs = [SERVER_PY, ...(opts.actions === false ? ['--no-actions'] : [])];
  const { command, args } = opts.wrap?.(PYTHON3, pyArgs, busEnv) ?? { command: PYTHON3, args: pyArgs };
  const child: ChildProcess = spawn(command, args, {
    env: cleanEnv(busEnv),
    stdio: ['pipe', 'pipe', 'pipe'],
    shell: false,
  });
  const notifies: NotifyCall[] = [];
  const closed: number[] = [];
  let capabilities = 0;
  let ready = false;
  let stderr = '';
  let partial = '';
  child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-8000)));
  child.stdout?.on('data', (b: Buffer) => {
    partial += b.toString('utf8');
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line.trim() === '') continue;
      const ev = JSON.parse(line) as ServerEvent;
      if (ev.event === 'ready') ready = true;
      else if (ev.event === 'capabilities') capabilities++;
      else if (ev.event === 'notify') notifies.push(ev as unknown as NotifyCall);
      else if (ev.event === 'close' && ev.id !== undefined) closed.push(ev.id);
    }
  });
  child.on('error', () => undefined);
  const pid = child.pid;
  if (pid === undefined) throw new Error('cannot start the notification server');
  const stop = (): Promise<void> => stopChild(child);
  try {
    await waitFor(() => ready || child.exitCode !== null, { timeoutMs: 15_000, what: 'the notification server to own its name' });
    if (!ready) throw new Error(`notification server exited: ${stderr}`);
  } catch (e: unknown) {
    await stop();
    throw e;
  }
  const order = (cmd: object): void => {
    child.stdin?.write(`${JSON.stringify(cmd)}\n`);
  };
  return {
    pid,
    notifies,
    closed,
    capabilityCalls: () => capabilities,
    waitForNotify: async (count = 1, timeoutMs = 10_000) => {
      await waitFor(() => notifies.length >= count, { timeoutMs, what: `${count} Notify call(s); server stderr: ${stderr}` });
      const last = notifies[count - 1];
      if (last === undefined) throw new Error('no Notify call');
      return last;
    },
    waitForClose: (id, timeoutMs = 10_000) => waitFor(() => closed.includes(id), { timeoutMs, what: `CloseNotification(${id})` }),
    invoke: (id, action) => order({ cmd: 'invoke', id, action }),
    dismiss: (id) => order({ cmd: 'dismiss', id }),
    stop,
  };
}

/**
 * A private bus with the notification server on it, both stopped after the test `t`;
 * undefined (after a skip) when a peer is missing.
 */
export async function busWithNotifications(
  t: SkipContext & Pick<TestContext, 'after'>,
  opts: { actions?: boolean } = {},
): Promise<{ bus: SessionBus; server: NotificationServer } | undefined> {
  const bus = await startSessionBus(t);
  if (bus === undefined) return undefined;
  t.after(() => bus.stop());
  const server = await startNotificationServer(t, bus, opts);
  if (server === undefined) return undefined;
  t.after(() => server.stop());
  return { bus, server };
}
