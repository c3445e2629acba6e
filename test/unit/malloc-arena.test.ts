/**
 * The agent's one malloc arena (src/cli/harden.ts): the background child's environment
 * (MALLOC_ARENA_MAX=1 unless the user set a value; when set here, dropped again by the child).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MALLOC_ARENA_VARIABLE, daemonChildEnv } from '../../src/cli/harden';

describe('one malloc arena', () => {
  it('the background child gets MALLOC_ARENA_MAX=1 unless the user set a value, which wins', () => {
    const mine = daemonChildEnv({ PATH: '/usr/bin' });
    assert.deepEqual(mine, { env: { PATH: '/usr/bin', [MALLOC_ARENA_VARIABLE]: '1' }, injected: true });
    const theirs = daemonChildEnv({ PATH: '/usr/bin', [MALLOC_ARENA_VARIABLE]: '4' });
    assert.deepEqual(theirs, { env: { PATH: '/usr/bin', [MALLOC_ARENA_VARIABLE]: '4' }, injected: false });
  });
});
