/**
 * Pending approvals through the ApprovalPort interface, answered by the terminal method
 * (the control-socket handlers): ids, first answer wins, timeout, abort, bounds, grants, audit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditRecord, AuditSink } from '../../src/agent/ports';
import { approvalCommands, approvalHandlers } from '../../src/approvals/handlers';
import { PendingApprovals } from '../../src/approvals/pending';
import { UsageError } from '../../src/errors';
import { waitFor } from '../helpers/proc';
import { keyView, loginQuestion, sshProcess } from '../helpers/sign-questions';

class RecordingAudit implements AuditSink {
  readonly records: AuditRecord[] = [];
  record(r: AuditRecord): void {
    this.records.push(r);
  }
  flush(): void {}
  reasons(): string[] {
    return this.records.map((r) => `${r.decision} ${r.reason}`);
  }
}

function terminalOnly(extra: ConstructorParameters<typeof PendingApprovals>[0] = {}): {
  approvals: PendingApprovals;
  audit: RecordingAudit;
} {
  const audit = new RecordingAudit();
  const approvals = new PendingApprovals({ channels: [], audit, ...extra });
  return { approvals, audit };
}

test('a pending approval is listed with its facts and answered from the terminal', async (t) => {
  const { approvals, audit } = terminalOnly();
  t.after(() => approvals.close());
  const h = approvalHandlers(approvals);
  const key = keyView({ name: 'deploy' });
  const q = loginQuestion(key);
  const asked = approvals.ask(q, new AbortController().signal);
  const [item, ...rest] = h.approvals();
  assert.equal(rest.length, 0);
  assert.ok(item !== undefined);
  assert.match(item.id, /^[0-9a-z]{6}$/);
  assert.deepEqual(item.key, { fingerprint: key.fingerprint, comment: 'me@laptop', name: 'deploy', type: 'ssh-ed25519' });
  assert.deepEqual(item.process, q.process);
  assert.deepEqual(item.destination, q.destination);
  assert.equal(item.purpose, 'login');
  assert.ok(!Number.isNaN(Date.parse(item.asked)));
  assert.deepEqual(h.approve(item.id), { id: item.id, allowed: true, grant: null });
  assert.deepEqual(await asked, { allowed: true, reason: 'approved by terminal' });
  assert.deepEqual(h.approvals(), []);
  assert.throws(() => h.approve(item.id), UsageError, 'an answered approval is gone');
  assert.ok(audit.records.every((r) => r.event === 'approval'));
  assert.deepEqual(audit.reasons(), [`deny approval ${item.id} asked`, `allow approval ${item.id} approved by terminal`]);
});

test('deny, timeout and abort all refuse, and leave nothing pending', async (t) => {
  const { approvals, audit } = terminalOnly({ promptTimeoutMs: 200 });
  t.after(() => approvals.close());
  const h = approvalHandlers(approvals);
  const denied = approvals.ask(loginQuestion(keyView()), new AbortController().signal);
  const id = h.approvals()[0]?.id ?? '';
  assert.deepEqual(h.deny(id), { id, allowed: false, grant: null });
  assert.deepEqual(await denied, { allowed: false, reason: 'denied by terminal' });

  assert.deepEqual(await approvals.ask(loginQuestion(keyView()), new AbortController().signal), {
    allowed: false,
    reason: 'timeout',
  });

  const ac = new AbortController();
  const aborted = approvals.ask(loginQuestion(keyView()), ac.signal);
  assert.equal(h.approvals().length, 1);
  ac.abort(new Error('key removed'));
  assert.deepEqual(await aborted, { allowed: false, reason: 'withdrawn: key removed' });
  assert.deepEqual(h.approvals(), []);

  const already = new AbortController();
  already.abort();
  assert.equal((await approvals.ask(loginQuestion(keyView()), already.signal)).allowed, false);
  assert.ok(audit.reasons().some((r) => /^deny approval \w+ timeout$/.test(r)));
  assert.ok(audit.reasons().some((r) => /^deny approval \w+ withdrawn: key removed$/.test(r)));
});

test('ten concurrent requests answered out of order each get their own answer', async (t) => {
  const { approvals } = terminalOnly();
  t.after(() => approvals.close());
  const h = approvalHandlers(approvals);
  const keys = Array.from({ length: 10 }, () => keyView());
  const asks = keys.map((k) => approvals.ask(loginQuestion(k), new AbortController().signal));
  const listed = h.approvals();
  assert.equal(listed.length, 10);
  assert.equal(new Set(listed.map((a) => a.id)).size, 10, 'ids are distinct');
  // Answer in a scrambled order; even positions allowed, odd denied.
  const order = [7, 2, 9, 0, 5, 3, 8, 1, 6, 4];
  for (const i of order) {
    const fp = keys[i]?.fingerprint;
    const item = listed.find((a) => a.key.fingerprint === fp);
    assert.ok(item !== undefined);
    if (i % 2 === 0) h.approve(item.id);
    else h.deny(item.id);
  }
  const answers = await Promise.all(asks);
  answers.forEach((a, i) => assert.equal(a.allowed, i % 2 === 0, `request ${i}`));
});

test('remember creates a grant: the next request is allowed without asking, until revoked', async (t) => {
  const { approvals, audit } = terminalOnly();
  t.after(() => approvals.close());
  const h = approvalHandlers(approvals);
  const key = keyView();
  const first = approvals.ask(loginQuestion(key), new AbortController().signal);
  const id = h.approvals()[0]?.id ?? '';
  const result = h.approve(id, true);
  assert.ok(result.grant !== null);
  const grant = result.grant;
  assert.match((await first).reason, new RegExp(`^approved by terminal, remembered as grant ${grant.id}$`));
  assert.deepEqual(h.grants(), [grant]);
  assert.equal(grant.exe, '/usr/bin/ssh');
  assert.equal(grant.host, 'build.example.com');
  assert.equal(grant.purpose, null);
  assert.ok(Date.parse(grant.expires) > Date.now());

  // Same key, program and host: no prompt.
  const second = approvals.ask(loginQuestion(key), new AbortController().signal);
  assert.deepEqual(h.approvals(), []);
  assert.deepEqual(await second, { allowed: true, reason: `grant ${grant.id}` });
  assert.ok(audit.reasons().includes(`allow grant ${grant.id}`), 'grant use is audited');

  // Another host, another program, another key: asked.
  for (const q of [
    loginQuestion(key, {
      destination: { ...loginQuestion(key).destination!, host: 'other.example.com', names: ['other.example.com'] },
    }),
    loginQuestion(key, { process: sshProcess({ exe: '/usr/bin/scp' }) }),
    loginQuestion(keyView()),
  ]) {
    const p = approvals.ask(q, new AbortController().signal);
    const pending = h.approvals();
    assert.equal(pending.length, 1);
    h.deny(pending[0]?.id ?? '');
    assert.equal((await p).allowed, false);
  }

  assert.deepEqual(h.revoke(grant.id), { revoked: 1 });
  assert.throws(() => h.revoke(grant.id), UsageError);
  const third = approvals.ask(loginQuestion(key), new AbortController().signal);
  assert.equal(h.approvals().length, 1, 'asked again after revoke');
  h.deny(h.approvals()[0]?.id ?? '');
  assert.equal((await third).allowed, false);
  assert.ok(audit.reasons().includes(`deny grant ${grant.id} revoked`));
});

test('grants of a removed key end with it', async (t) => {
  const { approvals, audit } = terminalOnly();
  t.after(() => approvals.close());
  const h = approvalHandlers(approvals);
  const [k1, k2] = [keyView(), keyView()];
  for (const k of [k1, k2]) {
    const p = approvals.ask(loginQuestion(k), new AbortController().signal);
    h.approve(h.approvals()[0]?.id ?? '', true);
    await p;
  }
  assert.equal(approvals.grants.revokeForKey(k1.fingerprint), 1);
  assert.deepEqual(
    h.grants().map((g) => g.key.fingerprint),
    [k2.fingerprint],
  );
  assert.ok(audit.reasons().some((r) => /^deny grant \w+ key removed$/.test(r)));
});

test('unbound connections: the grant is scoped by purpose; an unknown program gets no grant', async (t) => {
  const { approvals } = terminalOnly();
  t.after(() => approvals.close());
  const h = approvalHandlers(approvals);
  const key = keyView();
  const git = loginQuestion(key, { destination: null, purpose: 'sign:git', process: sshProcess({ exe: '/usr/bin/ssh-keygen' }) });
  const p = approvals.ask(git, new AbortController().signal);
  const grant = h.approve(h.approvals()[0]?.id ?? '', true).grant;
  await p;
  assert.equal(grant?.host, null);
  assert.equal(grant?.purpose, 'sign:git');
  assert.equal((await approvals.ask(git, new AbortController().signal)).allowed, true);
  const other = approvals.ask({ ...git, purpose: 'sign:file' }, new AbortController().signal);
  assert.equal(h.approvals().length, 1, 'another namespace is asked');
  h.deny(h.approvals()[0]?.id ?? '');
  await other;

  const unknown = approvals.ask({ ...git, process: null }, new AbortController().signal);
  assert.equal(h.approve(h.approvals()[0]?.id ?? '', true).grant, null);
  assert.equal((await unknown).allowed, true);
  assert.deepEqual(h.revoke('all'), { revoked: 1 });
  assert.deepEqual(h.grants(), []);
});

test('requests for the same key wait their turn and reuse the grant the first answer made', async (t) => {
  const { approvals } = terminalOnly();
  t.after(() => approvals.close());
  const h = approvalHandlers(approvals);
  const key = keyView();
  const asks = [1, 2, 3].map(() => approvals.ask(loginQuestion(key), new AbortController().signal));
  const listed = h.approvals();
  assert.equal(listed.length, 3, 'every request is listed for the terminal at once');
  h.approve(listed[0]?.id ?? '', true);
  const answers = await Promise.all(asks);
  assert.ok(answers.every((a) => a.allowed));
  assert.match(answers[1]?.reason ?? '', /^grant \w+$/);
  assert.deepEqual(h.approvals(), []);
});

test('beyond the bound a request is refused at once', async (t) => {
  const { approvals, audit } = terminalOnly({ maxPending: 2 });
  t.after(() => approvals.close());
  const asks = [1, 2].map(() => approvals.ask(loginQuestion(keyView()), new AbortController().signal));
  assert.deepEqual(await approvals.ask(loginQuestion(keyView()), new AbortController().signal), {
    allowed: false,
    reason: 'too many pending approvals (2)',
  });
  assert.ok(audit.reasons().includes('deny too many pending approvals (2)'));
  approvals.close();
  assert.ok((await Promise.all(asks)).every((a) => !a.allowed && a.reason === 'withdrawn: agent stopping'));
});

test('a grant expires on its own, with an audit record', async (t) => {
  const { approvals, audit } = terminalOnly({ rememberMs: 100 });
  t.after(() => approvals.close());
  const h = approvalHandlers(approvals);
  const p = approvals.ask(loginQuestion(keyView()), new AbortController().signal);
  const grant = h.approve(h.approvals()[0]?.id ?? '', true).grant;
  await p;
  assert.ok(grant !== null);
  await waitFor(() => h.grants().length === 0, { what: 'the grant to expire' });
  assert.ok(audit.reasons().includes(`deny grant ${grant.id} expired`));
});

test('a grant past its time is not used even before its timer runs', async (t) => {
  let now = Date.now();
  const { approvals } = terminalOnly({ now: () => now });
  t.after(() => approvals.close());
  const h = approvalHandlers(approvals);
  const key = keyView();
  const p = approvals.ask(loginQuestion(key), new AbortController().signal);
  h.approve(h.approvals()[0]?.id ?? '', true);
  await p;
  now += 16 * 60_000;
  const again = approvals.ask(loginQuestion(key), new AbortController().signal);
  assert.equal(h.approvals().length, 1);
  assert.deepEqual(h.grants(), []);
  h.deny(h.approvals()[0]?.id ?? '');
  await again;
});

test('the commands by name take the control request args and refuse bad ones', async (t) => {
  const { approvals } = terminalOnly();
  t.after(() => approvals.close());
  const cmd = approvalCommands(approvals);
  assert.deepEqual(Object.keys(cmd).sort(), ['approvals', 'approve', 'deny', 'grants', 'revoke']);
  const p = approvals.ask(loginQuestion(keyView()), new AbortController().signal);
  const listed = cmd.approvals?.({}) as { id: string }[];
  assert.throws(() => cmd.approve?.({}), UsageError);
  assert.throws(() => cmd.approve?.({ id: 7 }), UsageError);
  assert.throws(() => cmd.deny?.({ id: 'zzzzzz' }), UsageError);
  const r = cmd.approve?.({ id: listed[0]?.id, remember: true }) as { grant: { id: string } | null };
  assert.equal((await p).allowed, true);
  assert.equal((cmd.grants?.({}) as unknown[]).length, 1);
  assert.deepEqual(cmd.revoke?.({ all: true }), { revoked: 1 });
  assert.ok(r.grant !== null);
  assert.throws(() => cmd.revoke?.({ id: r.grant?.id }), UsageError);
});

test('with denyWhenUnshown (no config file), a prompt no method can show is denied at once, as OpenSSH does', async (t) => {
  // No channels at all, and a channel that is unavailable (no askpass, no bus): both deny.
  const unavailable = { method: 'askpass' as const, show: () => Promise.resolve(null), close: () => undefined };
  for (const channels of [[], [unavailable]]) {
    const audit = new RecordingAudit();
    const approvals = new PendingApprovals({ channels, audit, denyWhenUnshown: true, promptTimeoutMs: 60_000 });
    t.after(() => approvals.close());
    const answer = await approvals.ask(loginQuestion(keyView()), new AbortController().signal);
    assert.deepEqual(answer, { allowed: false, reason: 'no prompt method available' });
    assert.deepEqual(approvals.list(), []);
  }
});
