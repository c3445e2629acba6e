/**
 * The profile line for ssh and console logins: which file, which shell family, and adding /
 * removing it idempotently without touching anything else. The lines themselves run in real
 * shells in test/interop/shell-profile.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PROFILE_LINES,
  PROFILE_MARKER,
  defaultProfile,
  familyOf,
  withProfileLine,
  withoutProfileLine,
} from '../../src/cli/shell-profile';

describe('shell profile', () => {
  test('family from the file name', () => {
    assert.equal(familyOf('/h/.profile'), 'sh');
    assert.equal(familyOf('/h/.bashrc'), 'sh');
    assert.equal(familyOf('/h/.zprofile'), 'sh');
    assert.equal(familyOf('/h/.config/fish/conf.d/tsagent.fish'), 'fish');
    assert.equal(familyOf('/h/.login'), 'csh');
    assert.equal(familyOf('/h/.tcshrc'), 'csh');
  });

  test('the default profile follows $SHELL', () => {
    const env = (shell: string): NodeJS.ProcessEnv => ({ HOME: '/nonexistent-home', SHELL: shell });
    assert.equal(defaultProfile(env('/bin/bash')), '/nonexistent-home/.profile');
    assert.equal(defaultProfile(env('/usr/bin/zsh')), '/nonexistent-home/.zprofile');
    assert.equal(defaultProfile(env('/usr/bin/fish')), '/nonexistent-home/.config/fish/conf.d/tsagent.fish');
    assert.equal(defaultProfile({ ...env('/usr/bin/fish'), XDG_CONFIG_HOME: '/cfg' }), '/cfg/fish/conf.d/tsagent.fish');
    assert.equal(defaultProfile(env('/bin/tcsh')), '/nonexistent-home/.login');
    assert.equal(defaultProfile(env('/bin/dash')), '/nonexistent-home/.profile');
    assert.equal(defaultProfile({ HOME: '/nonexistent-home' }), '/nonexistent-home/.profile');
  });

  test('added once, after the existing text, on a line of its own', () => {
    const once = withProfileLine('umask 022', 'sh');
    assert.equal(once, `umask 022\n${PROFILE_MARKER}\n${PROFILE_LINES.sh}\n`);
    assert.equal(withProfileLine(once, 'sh'), undefined);
    assert.equal(withProfileLine('', 'fish'), `${PROFILE_MARKER}\n${PROFILE_LINES.fish}\n`);
  });

  test('removed exactly: the marker and our line, nothing else', () => {
    const text = `a\n${PROFILE_MARKER}\n${PROFILE_LINES.csh}\nb\n`;
    assert.deepEqual(withoutProfileLine(text), { text: 'a\nb\n', removed: 1 });
    // A marker followed by a line that is not ours is left alone.
    const edited = `a\n${PROFILE_MARKER}\nexport SSH_AUTH_SOCK=/mine\n`;
    assert.deepEqual(withoutProfileLine(edited), { text: edited, removed: 0 });
    const round = withProfileLine('x\n', 'sh')!;
    assert.deepEqual(withoutProfileLine(round), { text: 'x\n', removed: 1 });
  });
});
