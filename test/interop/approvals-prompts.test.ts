/**
 * The prompt methods against real peers: desktop notifications through a real dbus-daemon
 * and a python3-dbus (libdbus) org.freedesktop.Notifications server; askpass as a real
 * program. Everything through the ApprovalPort interface and the terminal handlers.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { AskpassChannel } from '../../src/approvals/askpass';
import type { PromptChannel } from '../../src/approvals/channel';
import { approvalHandlers } from '../../src/approvals/handlers';
import { NotificationChannel } from '../../src/approvals/notification';
import { PendingApprovals } from '../../src/approvals/pending';
import type { ApprovalsOptions } from '../../src/approvals/pending';
import { busWithNotifications } from '../helpers/notification-server';
import type { NotificationServer, SessionBus } from '../helpers/notification-server';
import { askpassScripts } from '../helpers/askpass-scripts';
import { cleanEnv, waitFor } from '../helpers/proc';
import { keyView, loginQuestion } from '../helpers/sign-questions';
import type { TestContext } from 'node:test';

function never(): AbortSignal {
  return new AbortController().signal;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function withBus(
  t: TestContext,
  opts: { actions?: boolean } = {},
): Promise<{ bus: SessionBus; server: NotificationServer } | undefined> {
  return busWithNotifications(t, opts);
}

function approvalsWith(t: TestContext, channels: PromptChannel[], extra: ApprovalsOptions = {}): PendingApprovals {
  const approvals = new PendingApprovals({ channels, ...extra });
  t.after(() => approvals.close());
  return approvals;
}

function notificationChannel(bus: SessionBus): NotificationChannel {
  return new NotificationChannel({ env: { DBUS_SESSION_BUS_ADDRESS: bus.address } });
}

/** A bus, a notification server, and approvals shown only by notification (and the terminal). */
async function notifying(t: TestContext, extra: ApprovalsOptions = {}) {
  const env = await withBus(t);
  if (env === undefined) return undefined;
  const approvals = approvalsWith(t, [notificationChannel(env.bus)], extra);
  return { ...env, approvals, h: approvalHandlers(approvals) };
}

// ---------------------------------------------------------------------------------------------
// notifications

test('notification: the text names program, destination, purpose; allow approves', async (t) => {
  const env = await notifying(t);
  if (env === undefined) return;
  const { approvals } = env;
  const key = keyView({ name: 'deploy' });
  const asked = approvals.ask(loginQuestion(key), never());
  const n = await env.server.waitForNotify();
  const id = approvals.list()[0]?.id ?? '';
  assert.equal(n.app, 'tsagent');
  assert.match(n.summary, new RegExp(`approval ${id}`));
  assert.match(n.body, /^Program: ssh \(ssh -p 2222 git@build\.example\.com\)/m);
  assert.match(n.body, /^Destination: git@build\.example\.com port 2222$/m);
  assert.match(n.body, /^Purpose: log in$/m);
  assert.match(n.body, new RegExp(`^Key: deploy ${key.fingerprint.replace(/[+/]/g, '\\$&')}$`, 'm'));
  assert.deepEqual(n.actions, ['allow', 'Allow', 'allow-remember', 'Allow for 15 min', 'deny', 'Deny']);
  assert.equal(n.hints.urgency, 2);
  env.server.invoke(n.id, 'allow');
  assert.deepEqual(await asked, { allowed: true, reason: 'approved by notification' });
});

test('notification: allow-remember makes a grant; the second request asks nothing', async (t) => {
  const env = await notifying(t);
  if (env === undefined) return;
  const { approvals, h } = env;
  const key = keyView();
  const first = approvals.ask(loginQuestion(key), never());
  const n = await env.server.waitForNotify();
  env.server.invoke(n.id, 'allow-remember');
  const a = await first;
  assert.equal(a.allowed, true);
  assert.match(a.reason, /^approved by notification, remembered as grant \w{6}$/);
  const grants = h.grants();
  assert.equal(grants.length, 1);
  assert.equal(grants[0]?.host, 'build.example.com');
  const second = await approvals.ask(loginQuestion(key), never());
  assert.equal(second.allowed, true);
  assert.equal(second.reason, `grant ${grants[0]?.id}`);
  assert.equal(env.server.notifies.length, 1, 'no second Notify');
});

test('notification: deny refuses; no answer times out and closes the notification', async (t) => {
  const env = await notifying(t, { promptTimeoutMs: 1500 });
  if (env === undefined) return;
  const { approvals } = env;
  const denied = approvals.ask(loginQuestion(keyView()), never());
  const n1 = await env.server.waitForNotify(1);
  env.server.invoke(n1.id, 'deny');
  assert.deepEqual(await denied, { allowed: false, reason: 'denied by notification' });

  const unanswered = approvals.ask(loginQuestion(keyView()), never());
  const n2 = await env.server.waitForNotify(2);
  assert.ok(n2.timeout > 0 && n2.timeout <= 1500, 'the notification expires with the prompt');
  assert.deepEqual(await unanswered, { allowed: false, reason: 'timeout' });
  await env.server.waitForClose(n2.id);
});

test('notification: the terminal answers first, the abort signal fires: the notification is closed', async (t) => {
  const env = await notifying(t);
  if (env === undefined) return;
  const { approvals, h } = env;
  const p1 = approvals.ask(loginQuestion(keyView()), never());
  const n1 = await env.server.waitForNotify(1);
  h.approve(h.approvals()[0]?.id ?? '');
  assert.deepEqual(await p1, { allowed: true, reason: 'approved by terminal' });
  await env.server.waitForClose(n1.id);

  const ac = new AbortController();
  const p2 = approvals.ask(loginQuestion(keyView()), ac.signal);
  const n2 = await env.server.waitForNotify(2);
  ac.abort(new Error('agent locked'));
  assert.deepEqual(await p2, { allowed: false, reason: 'withdrawn: agent locked' });
  await env.server.waitForClose(n2.id);
  // A late click on a withdrawn notification changes nothing.
  env.server.invoke(n2.id, 'allow');
});

test('notification: dismissed without an answer leaves the request to the other methods', async (t) => {
  const env = await notifying(t);
  if (env === undefined) return;
  const { approvals, h } = env;
  const p = approvals.ask(loginQuestion(keyView()), never());
  const n = await env.server.waitForNotify();
  env.server.dismiss(n.id);
  // Still pending: the terminal answers it.
  await waitFor(() => h.approvals().length === 1, { what: 'the approval to stay pending' });
  h.deny(h.approvals()[0]?.id ?? '');
  assert.deepEqual(await p, { allowed: false, reason: 'denied by terminal' });
});

test('notification: found through XDG_RUNTIME_DIR/bus when the address is not set', async (t) => {
  const env = await withBus(t);
  if (env === undefined) return;
  const approvals = approvalsWith(t, [new NotificationChannel({ env: { XDG_RUNTIME_DIR: dirname(env.bus.socketPath) } })]);
  const p = approvals.ask(loginQuestion(keyView()), never());
  const n = await env.server.waitForNotify();
  env.server.invoke(n.id, 'allow');
  assert.deepEqual(await p, { allowed: true, reason: 'approved by notification' });
});

test('notification: a server without actions, or no bus, is simply not used', async (t) => {
  const env = await withBus(t, { actions: false });
  if (env === undefined) return;
  for (const address of [env.bus.address, `unix:path=${join(env.bus.socketPath, 'nowhere')}`, undefined]) {
    const channel = new NotificationChannel({ env: address === undefined ? {} : { DBUS_SESSION_BUS_ADDRESS: address } });
    const approvals = approvalsWith(t, [channel]);
    const h = approvalHandlers(approvals);
    const p = approvals.ask(loginQuestion(keyView()), never());
    // The method's answer to "show" is "unavailable"; wait for it through a second probe.
    assert.equal(
      await channel.show({ id: 'x', text: { summary: 's', lines: [], text: 's' }, rememberLabel: '1 min', timeoutMs: 1000 }),
      null,
    );
    h.approve(h.approvals()[0]?.id ?? '');
    assert.equal((await p).allowed, true);
  }
  assert.ok(env.server.capabilityCalls() >= 2, 'capabilities were asked');
  assert.equal(env.server.notifies.length, 0, 'never notified without actions');
});

test('notification: the bus going away ends the prompt without an answer; the next prompt reconnects', async (t) => {
  const first = await withBus(t);
  if (first === undefined) return;
  const busEnv: NodeJS.ProcessEnv = { DBUS_SESSION_BUS_ADDRESS: first.bus.address };
  const approvals = approvalsWith(t, [new NotificationChannel({ env: busEnv })]);
  const h = approvalHandlers(approvals);
  const p1 = approvals.ask(loginQuestion(keyView()), never());
  await first.server.waitForNotify();
  await first.server.stop();
  await first.bus.stop();
  // The prompt stays pending for the terminal; the daemon did not crash.
  assert.equal(h.approvals().length, 1);
  h.deny(h.approvals()[0]?.id ?? '');
  assert.equal((await p1).allowed, false);

  const second = await withBus(t);
  if (second === undefined) return;
  busEnv.DBUS_SESSION_BUS_ADDRESS = second.bus.address;
  const p2 = approvals.ask(loginQuestion(keyView()), never());
  const n = await second.server.waitForNotify();
  second.server.invoke(n.id, 'allow');
  assert.deepEqual(await p2, { allowed: true, reason: 'approved by notification' });
});

// ---------------------------------------------------------------------------------------------
// askpass

function askpassChannel(program: string, spawned: number[]): AskpassChannel {
  return new AskpassChannel({
    env: cleanEnv({ SSH_ASKPASS: program, SSH_ASKPASS_REQUIRE: 'force' }),
    onSpawn: (pid) => spawned.push(pid),
  });
}

test('askpass: gets the prompt as its argument with SSH_ASKPASS_PROMPT=confirm; exit 0 approves, 1 denies', async (t) => {
  const s = await askpassScripts(t);
  const spawned: number[] = [];
  const yes = approvalsWith(t, [askpassChannel(s.yes, spawned)]);
  const a = await yes.ask(loginQuestion(keyView({ name: 'deploy' })), never());
  assert.deepEqual(a, { allowed: true, reason: 'approved by askpass' });
  const pid = spawned[0] ?? 0;
  const prompt = await readFile(join(s.dir, `prompt.${pid}`), 'utf8');
  assert.match(
    prompt,
    /\nProgram: ssh \(ssh -p 2222 git@build\.example\.com\) pid 4242\nDestination: git@build\.example\.com port 2222\nPurpose: log in\nKey: deploy SHA256:/,
  );
  assert.equal(await readFile(join(s.dir, `mode.${pid}`), 'utf8'), 'confirm');

  const no = approvalsWith(t, [askpassChannel(s.no, spawned)]);
  assert.deepEqual(await no.ask(loginQuestion(keyView()), never()), { allowed: false, reason: 'denied by askpass' });
});

test('askpass: withdrawn (killed by pid) when the terminal answers first', async (t) => {
  const s = await askpassScripts(t);
  const spawned: number[] = [];
  const approvals = approvalsWith(t, [askpassChannel(s.wait, spawned)]);
  const h = approvalHandlers(approvals);
  const p = approvals.ask(loginQuestion(keyView()), never());
  assert.equal(spawned.length, 1);
  const pid = spawned[0] ?? 0;
  t.after(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await waitFor(async () => (await readFile(join(s.dir, `mode.${pid}`), 'utf8').catch(() => '')) === 'confirm', {
    what: 'askpass to start',
  });
  h.approve(h.approvals()[0]?.id ?? '');
  assert.deepEqual(await p, { allowed: true, reason: 'approved by terminal' });
  await waitFor(() => !alive(pid), { what: `askpass pid ${pid} to be killed` });
});

test('askpass and notification together: the notification answers, askpass is killed', async (t) => {
  const env = await withBus(t);
  if (env === undefined) return;
  const s = await askpassScripts(t);
  const spawned: number[] = [];
  const approvals = approvalsWith(t, [notificationChannel(env.bus), askpassChannel(s.wait, spawned)]);
  const p = approvals.ask(loginQuestion(keyView()), never());
  const n = await env.server.waitForNotify();
  const pid = spawned[0] ?? 0;
  t.after(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  env.server.invoke(n.id, 'allow');
  assert.deepEqual(await p, { allowed: true, reason: 'approved by notification' });
  await waitFor(() => !alive(pid), { what: `askpass pid ${pid} to be killed` });
});

test('askpass: the cap bounds how many prompts run at once; the rest wait their turn', async (t) => {
  const s = await askpassScripts(t);
  const spawned: number[] = [];
  const approvals = approvalsWith(t, [askpassChannel(s.wait, spawned)], { maxShown: 2 });
  t.after(() => {
    for (const pid of spawned) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const h = approvalHandlers(approvals);
  const keys = Array.from({ length: 5 }, () => keyView());
  const asks = keys.map((k) => approvals.ask(loginQuestion(k), never()));
  assert.equal(h.approvals().length, 5, 'all five are pending (and answerable from the terminal)');
  assert.equal(spawned.length, 2, 'only two askpass windows at once');
  // Answer them in the order they are listed; each answer withdraws one window and lets the
  // next request be shown, so never more than two are open.
  for (let answered = 0; answered < 5; answered++) {
    assert.equal(spawned.length, Math.min(5, answered + 2));
    const item = h.approvals()[0];
    assert.ok(item !== undefined);
    h.deny(item.id);
  }
  const answers = await Promise.all(asks);
  assert.ok(answers.every((a) => a.reason === 'denied by terminal'));
  assert.equal(spawned.length, 5, 'each was shown in turn');
  await waitFor(() => spawned.every((pid) => !alive(pid)), { what: 'every askpass to be killed' });
});
