/**
 * The agent's one malloc arena (src/cli/harden.ts): which command lines start the agent in
 * the foreground (they call mallopt first thing), and the background child's environment
 * (MALLOC_ARENA_MAX=1 unless the user set a value; when set here, dropped again by the child).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MALLOC_ARENA_VARIABLE, daemonChildEnv, startsInForeground } from '../../src/cli/harden';

const argv = (...args: string[]): string[] => ['node', 'tsagent.js', ...args];

describe('one malloc arena', () => {
  it('foreground starts are read as getopt reads them', () => {
    for (const yes of [
      ['start', '-D'],
      ['start', '-d'],
      ['start', '-Dd'],
      ['start', '-sD'],
      ['start', '-Da', '/tmp/s'],
      ['start', '-a', '/tmp/s', '-D'],
      ['start', '--config', 'c.toml', '-D'],
      ['start', '-t', '1h', '-d'],
    ])
      assert.equal(startsInForeground(argv(...yes)), true, yes.join(' '));
    for (const no of [
      ['start'],
      ['start', '-s'],
      ['start', '-a', '-D'], // -D is the socket path here
      ['start', '-aD'], // likewise
      ['start', 'ssh', '-D', '1080', 'host'], // the command's options are not ours
      ['start', '--', '-D'],
      ['start', '--config', '-D'],
      ['status', '-D'],
      ['log'],
    ])
      assert.equal(startsInForeground(argv(...no)), false, no.join(' '));
  });

  it('the background child gets MALLOC_ARENA_MAX=1 unless the user set a value, which wins', () => {
    const mine = daemonChildEnv({ PATH: '/usr/bin' });
    assert.deepEqual(mine, { env: { PATH: '/usr/bin', [MALLOC_ARENA_VARIABLE]: '1' }, injected: true });
    const theirs = daemonChildEnv({ PATH: '/usr/bin', [MALLOC_ARENA_VARIABLE]: '4' });
    assert.deepEqual(theirs, { env: { PATH: '/usr/bin', [MALLOC_ARENA_VARIABLE]: '4' }, injected: false });
  });
});
