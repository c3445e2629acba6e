/**
 * The notification method (POLICY.md §4): a desktop notification over the D-Bus session bus
 * (Desktop Notifications Specification: GetCapabilities, Notify with actions, ActionInvoked,
 * NotificationClosed, CloseNotification). It needs no DISPLAY: a systemd user service has the
 * bus. Used only when the session bus (DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus)
 * reaches a server that reports the `actions` capability; otherwise the method is simply
 * unavailable, never an error.
 *
 * The connection is made on the first prompt and kept; when it breaks, the next prompt makes
 * a new one. Signals are believed only from the connection that answered our Notify call (the
 * bus stamps every signal's sender; no other client can forge it).
 */
import type { Logger } from '../log';
import type { PromptChannel, PromptRequest, ShownPrompt, UserAnswer } from './channel';
import { DbusSession, sessionBusPath } from './dbus-session';
import type { CallTarget, DbusMessage } from './dbus-session';

const NOTIFICATIONS: CallTarget = {
  destination: 'org.freedesktop.Notifications',
  path: '/org/freedesktop/Notifications',
  interface: 'org.freedesktop.Notifications',
};
/** Bounded, and long enough for D-Bus activation of a notification daemon. */
const DEFAULT_CALL_TIMEOUT_MS = 5000;
/** Spec "Urgency Levels": critical notifications are not expired by the server on its own. */
const URGENCY_CRITICAL = 2;

/** The action keys the user can pick (POLICY.md §4). */
export type NotificationAction = 'allow' | 'allow-remember' | 'deny';

export interface NotificationOptions {
  /** Where DBUS_SESSION_BUS_ADDRESS is read (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  readonly appName?: string;
  readonly callTimeoutMs?: number;
  readonly logger?: Logger;
}

/** Notification ids are per server: a listener per (sender, id) open notification. */
interface OpenNotification {
  readonly sender: string | null;
  readonly id: number;
  settle(answer: UserAnswer | null): void;
}

/** Text the server may read as markup (the `body-markup` capability) shown as text. */
export function escapeMarkup(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function answerOf(action: string): UserAnswer | null {
  if (action === 'allow') return { allowed: true, remember: false };
  if (action === 'allow-remember') return { allowed: true, remember: true };
  if (action === 'deny') return { allowed: false, remember: false };
  return null; // "default" (a click on the body) or anything else: no answer
}

export class NotificationChannel implements PromptChannel {
  readonly method = 'notification' as const;
  private session: DbusSession | null = null;
  private readonly open = new Set<OpenNotification>();
  private readonly env: NodeJS.ProcessEnv;
  private readonly callTimeoutMs: number;

  constructor(private readonly options: NotificationOptions = {}) {
    this.env = options.env ?? process.env;
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  }

  async show(request: PromptRequest): Promise<ShownPrompt | null> {
    const session = this.connect();
    if (session === null) return null;
    let caps: readonly unknown[];
    try {
      // Asked each time: the server may have been replaced (or activated) since the last prompt.
      caps = (await session.call(NOTIFICATIONS, 'GetCapabilities', undefined, [])).body[0] as readonly unknown[];
    } catch (e: unknown) {
      this.options.logger?.debug({ err: e instanceof Error ? e.message : String(e) }, 'notification server unavailable');
      return null;
    }
    if (!Array.isArray(caps) || !caps.includes('actions')) return null;
    const markup = caps.includes('body-markup');
    const body = request.text.lines.map((l) => (markup ? escapeMarkup(l) : l)).join('\n');
    const actions = ['allow', 'Allow', 'allow-remember', `Allow for ${request.rememberLabel}`, 'deny', 'Deny'];
    const hints = [['urgency', ['y', URGENCY_CRITICAL]]];
    const args = [
      this.options.appName ?? 'tsagent',
      0,
      'dialog-password',
      request.text.summary,
      body,
      actions,
      hints,
      Math.max(1, Math.floor(request.timeoutMs)),
    ];

    let entry: OpenNotification | undefined;
    let resolveAnswer: (a: UserAnswer | null) => void = () => undefined;
    const answer = new Promise<UserAnswer | null>((resolve) => (resolveAnswer = resolve));
    const settle = (a: UserAnswer | null): void => {
      if (entry !== undefined) this.open.delete(entry);
      resolveAnswer(a);
    };
    try {
      await session.call(NOTIFICATIONS, 'Notify', 'susssasa{sv}i', args, (reply) => {
        // Registered as the reply is dispatched, before any later signal: an instant click is not lost.
        const id = reply.body[0];
        if (typeof id !== 'number') return;
        entry = { sender: reply.sender, id, settle };
        this.open.add(entry);
      });
    } catch (e: unknown) {
      this.options.logger?.debug({ err: e instanceof Error ? e.message : String(e) }, 'Notify failed');
      return null;
    }
    if (entry === undefined) return null;
    const shown = entry;
    let withdrawn = false;
    return {
      answer,
      withdraw: () => {
        if (withdrawn) return;
        withdrawn = true;
        if (!this.open.has(shown)) return;
        settle(null);
        if (!session.closed) session.call(NOTIFICATIONS, 'CloseNotification', 'u', [shown.id]).catch(() => undefined);
      },
    };
  }

  close(): void {
    this.session?.close();
    this.session = null;
  }

  /** The live session, or a new one; null when there is no usable session bus address. */
  private connect(): DbusSession | null {
    if (this.session !== null && !this.session.closed) return this.session;
    const path = sessionBusPath(this.env);
    if (path === null) return null;
    const session = new DbusSession(path, this.callTimeoutMs, () => this.onSessionClosed(session));
    session.onSignal((msg) => this.onSignal(msg));
    // Only the notification server's signals, only from its current owner.
    session
      .call(
        { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus' },
        'AddMatch',
        's',
        [
          `type='signal',sender='${NOTIFICATIONS.destination}',path='${NOTIFICATIONS.path}',interface='${NOTIFICATIONS.interface}'`,
        ],
      )
      .catch(() => undefined);
    this.session = session;
    return session;
  }

  private onSessionClosed(session: DbusSession): void {
    if (this.session === session) this.session = null;
    // Its notifications can no longer be answered: those prompts end without an answer.
    for (const e of [...this.open]) e.settle(null);
  }

  private onSignal(msg: DbusMessage): void {
    if (msg.interface !== NOTIFICATIONS.interface || msg.path !== NOTIFICATIONS.path) return;
    const [id, detail] = msg.body ?? [];
    if (typeof id !== 'number') return;
    for (const e of this.open) {
      if (e.id !== id || (e.sender !== null && e.sender !== msg.sender)) continue;
      if (msg.member === 'ActionInvoked' && typeof detail === 'string') {
        const a = answerOf(detail);
        if (a !== null) e.settle(a);
      } else if (msg.member === 'NotificationClosed') {
        e.settle(null);
      }
    }
  }
}
