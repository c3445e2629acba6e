/**
 * The one skip policy (test/helpers/peers.ts `skipOrFail`): an absent prerequisite skips
 * on a developer machine and fails under CI.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { requirePeer, skipOrFail, underCI } from '../helpers/peers';

const saved = process.env.CI;

function recorder(): { skipped: string[]; skip(msg?: string): void } {
  const skipped: string[] = [];
  return { skipped, skip: (msg?: string) => void skipped.push(msg ?? '') };
}

describe('skip policy', () => {
  afterEach(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  });

  it('without CI, an absent prerequisite skips with its reason', () => {
    for (const v of [undefined, '', '0', 'false', 'FALSE']) {
      if (v === undefined) delete process.env.CI;
      else process.env.CI = v;
      assert.equal(underCI(), false, `CI=${String(v)}`);
      const t = recorder();
      assert.equal(skipOrFail(t, 'not root'), undefined);
      assert.deepEqual(t.skipped, ['not root']);
    }
  });

  it('under CI, an absent prerequisite fails instead of skipping', () => {
    for (const v of ['true', '1', 'yes']) {
      process.env.CI = v;
      const t = recorder();
      assert.throws(() => skipOrFail(t, 'not root'), /not root; a missing peer fails under CI/);
      assert.throws(() => requirePeer(t, 'tsagent-no-such-peer-xyz'), /tsagent-no-such-peer-xyz not installed/);
      assert.deepEqual(t.skipped, []);
    }
  });
});
