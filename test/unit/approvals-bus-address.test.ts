import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busSocketPath, sessionBusPath } from '../../src/approvals/dbus-session';
import { escapeMarkup } from '../../src/approvals/notification';
import { durationLabel } from '../../src/approvals/pending';

test('session bus addresses: unix path and abstract only, first usable entry, %-decoded', () => {
  assert.equal(busSocketPath('unix:path=/run/user/1000/bus'), '/run/user/1000/bus');
  assert.equal(busSocketPath('unix:path=/tmp/a%20b,guid=0123'), '/tmp/a b');
  assert.equal(busSocketPath('unix:abstract=/tmp/dbus-XYZ,guid=1'), '\0/tmp/dbus-XYZ');
  assert.equal(busSocketPath('tcp:host=127.0.0.1,port=1;unix:path=/x'), '/x');
  assert.equal(busSocketPath('unixexec:path=/bin/sh,argv1=-c'), null, 'never runs a program');
  assert.equal(busSocketPath('tcp:host=example.com,port=55'), null);
  assert.equal(busSocketPath('unix:path=%zz'), null);
  assert.equal(busSocketPath('garbage'), null);
  assert.equal(busSocketPath(''), null);
  assert.equal(busSocketPath(undefined), null);
});

test('without DBUS_SESSION_BUS_ADDRESS the systemd user bus in XDG_RUNTIME_DIR is used', () => {
  assert.equal(sessionBusPath({ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/a', XDG_RUNTIME_DIR: '/run/user/1' }), '/a');
  assert.equal(sessionBusPath({ XDG_RUNTIME_DIR: '/run/user/1000/' }), '/run/user/1000/bus');
  assert.equal(sessionBusPath({ XDG_RUNTIME_DIR: 'relative' }), null);
  assert.equal(sessionBusPath({}), null);
});

test('markup escaping and remember labels', () => {
  assert.equal(escapeMarkup('<b>a&b</b>'), '&lt;b&gt;a&amp;b&lt;/b&gt;');
  assert.equal(durationLabel(15 * 60_000), '15 min');
  assert.equal(durationLabel(2 * 3600_000), '2 h');
  assert.equal(durationLabel(90_000), '90 s');
});
