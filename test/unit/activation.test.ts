/**
 * Picking the inherited sockets under systemd socket activation (sd_listen_fds(3)): by
 * LISTEN_FDNAMES when the units name them, else the first fd, as before names existed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SocketError } from '../../src/errors';
import { activatedSockets, controlSocketPath } from '../../src/server/activation';

const PID = 4242;

describe('activatedSockets', () => {
  test('not activated: no LISTEN_PID, another pid, no or bad LISTEN_FDS', () => {
    assert.equal(activatedSockets({}, PID), undefined);
    assert.equal(activatedSockets({ LISTEN_PID: '1', LISTEN_FDS: '1' }, PID), undefined);
    assert.equal(activatedSockets({ LISTEN_PID: String(PID) }, PID), undefined);
    assert.equal(activatedSockets({ LISTEN_PID: String(PID), LISTEN_FDS: '0' }, PID), undefined);
    assert.equal(activatedSockets({ LISTEN_PID: String(PID), LISTEN_FDS: 'x' }, PID), undefined);
  });

  test('one fd without a name (systemd-socket-activate, older units): fd 3 is the agent', () => {
    assert.deepEqual(activatedSockets({ LISTEN_PID: String(PID), LISTEN_FDS: '1' }, PID), { agent: 3, control: undefined });
    assert.deepEqual(activatedSockets({ LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'tsagent.socket' }, PID), {
      agent: 3,
      control: undefined,
    });
  });

  test('named fds are picked by name, in either order', () => {
    const env = (names: string): NodeJS.ProcessEnv => ({ LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: names });
    assert.deepEqual(activatedSockets(env('agent:control'), PID), { agent: 3, control: 4 });
    assert.deepEqual(activatedSockets(env('control:agent'), PID), { agent: 4, control: 3 });
    // An unnamed agent socket next to a named control socket.
    assert.deepEqual(activatedSockets(env('control:tsagent.socket'), PID), { agent: 4, control: 3 });
  });

  test('names beyond LISTEN_FDS are ignored; only a control fd is an error', () => {
    assert.deepEqual(activatedSockets({ LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'x:agent' }, PID), {
      agent: 3,
      control: undefined,
    });
    assert.throws(
      () => activatedSockets({ LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'control' }, PID),
      SocketError,
    );
  });
});

test('controlSocketPath: AGENT_SOCKET.ctl', () => {
  assert.equal(controlSocketPath('/run/user/1000/tsagent/agent.sock'), '/run/user/1000/tsagent/agent.sock.ctl');
});
