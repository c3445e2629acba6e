/**
 * The suite's `deferred` clean-ups (test/helpers/proc.ts): last registered, first run, every
 * one runs even when an earlier one throws, and the errors come out at the end.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deferred } from '../helpers/proc';

/** A stand-in for TestContext.after that keeps the hook, so the test can run it. */
function hooks(): { after: (fn: () => unknown) => void; run: () => Promise<unknown> } {
  let hook: (() => unknown) | undefined;
  return {
    after: (fn) => {
      hook = fn;
    },
    run: async () => hook?.(),
  };
}

test('clean-ups run last-registered first', async () => {
  const h = hooks();
  const defer = deferred(h);
  const ran: string[] = [];
  defer(() => ran.push('remove dir'));
  defer(async () => {
    await new Promise((r) => setTimeout(r, 5));
    ran.push('stop agent');
  });
  await h.run();
  assert.deepEqual(ran, ['stop agent', 'remove dir']);
});

test('a clean-up that throws does not stop the others; its error is thrown after them', async () => {
  const h = hooks();
  const defer = deferred(h);
  const ran: string[] = [];
  defer(() => ran.push('remove dir'));
  defer(() => {
    throw new Error('stop failed');
  });
  await assert.rejects(h.run(), /stop failed/);
  assert.deepEqual(ran, ['remove dir']);

  const two = hooks();
  const deferTwo = deferred(two);
  deferTwo(() => Promise.reject(new Error('a')));
  deferTwo(() => Promise.reject(new Error('b')));
  await assert.rejects(two.run(), (e: unknown) => e instanceof AggregateError && e.errors.length === 2);
});
