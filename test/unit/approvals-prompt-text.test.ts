import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_PROMPT_BYTES, describeDestination, escapePeerText, promptText } from '../../src/approvals/prompt-text';
import { destination, keyView, loginQuestion, sshProcess } from '../helpers/sign-questions';

test('the prompt names program, destination, purpose and key, in that order', () => {
  const key = keyView({ name: 'deploy' });
  const { summary, lines, text } = promptText(loginQuestion(key), 'abc123');
  assert.match(summary, /abc123/);
  assert.equal(lines.length, 4);
  assert.equal(lines[0], 'Program: ssh (ssh -p 2222 git@build.example.com) pid 4242');
  assert.equal(lines[1], 'Destination: git@build.example.com port 2222');
  assert.equal(lines[2], 'Purpose: log in');
  assert.equal(lines[3], `Key: deploy ${key.fingerprint}`);
  const at = (s: string): number => text.indexOf(s);
  assert.ok(at('Program:') < at('Destination:') && at('Destination:') < at('Purpose:') && at('Purpose:') < at('Key:'));
});

test('destinations: forwarded via, no name (host key), unbound', () => {
  assert.equal(
    describeDestination(destination({ forwarded: true, via: ['bastion.example.com'], port: null })),
    'git@build.example.com, forwarded via bastion.example.com',
  );
  assert.equal(
    describeDestination(destination({ host: null, names: [], user: null, port: null })),
    'the host with key SHA256:AAAAhostkeyfingerprintAAAAAAAAAAAAAAAAAAAAAA',
  );
  assert.equal(
    describeDestination(destination({ host: null, names: [], port: null })),
    'user git on the host with key SHA256:AAAAhostkeyfingerprintAAAAAAAAAAAAAAAAAAAAAA',
  );
  assert.match(describeDestination(null), /not bound/);
});

test('purposes and a key without a name use the comment', () => {
  const key = keyView({ comment: 'git signing' });
  const q = loginQuestion(key, {
    purpose: 'sign:git',
    destination: null,
    process: sshProcess({ exe: '/usr/bin/ssh-keygen', argv: ['ssh-keygen', '-Y', 'sign', '-n', 'git'] }),
  });
  const { lines } = promptText(q, 'x');
  assert.equal(lines[0], 'Program: ssh-keygen (ssh-keygen -Y sign -n git) pid 4242');
  assert.equal(lines[2], 'Purpose: sign with namespace git');
  assert.equal(lines[3], `Key: git signing ${key.fingerprint}`);
  assert.equal(promptText({ ...q, purpose: 'other' }, 'x').lines[2], 'Purpose: sign other data');
});

test('text from the peer cannot forge lines or hide characters', () => {
  assert.equal(escapePeerText('a\nDestination: evil\x1b[2J\\'), 'a\\x0aDestination: evil\\x1b[2J\\\\');
  assert.equal(escapePeerText('x\u202ey\u200b\x7f\u0085'), 'x\\u{202e}y\\u{200b}\\x7f\\x85');
  const key = keyView({ comment: 'c\r\nKey: trusted' });
  const q = loginQuestion(key, {
    process: sshProcess({ argv: ['ssh', 'h\nDestination: fake'] }),
    destination: destination({ host: 'h\tx', user: 'u\0' }),
  });
  const { text, lines } = promptText(q, 'x');
  assert.equal(text.split('\n').length, 5, 'summary + four lines, nothing injected');
  assert.ok(!/[\x00-\x08\x0b-\x1f\x7f]/.test(text));
  assert.equal(lines[1], 'Destination: u\\x00@h\\x09x port 2222');
});

test('a long argv keeps its head and its tail (where ssh has the destination)', () => {
  const argv = [
    '/usr/bin/ssh',
    ...Array.from({ length: 40 }, (_, i) => `-oOption${i}=value`),
    'git@far.example.com',
    'echo',
    'hi',
  ];
  const line = promptText(loginQuestion(keyView(), { process: sshProcess({ argv }) }), 'x').lines[0] ?? '';
  assert.match(line, /^Program: ssh \(\/usr\/bin\/ssh -oOption0=value .* … .*git@far\.example\.com echo hi\) pid 4242$/);
  assert.ok(line.length < 360);
  const one = promptText(loginQuestion(keyView(), { process: sshProcess({ argv: ['x'.repeat(1000)] }) }), 'x').lines[0] ?? '';
  assert.ok(one.length < 200 && one.includes('…'));
});

test('long argv and comments are capped, the whole text fits in 1023 bytes', () => {
  const argv = ['ssh', ...Array.from({ length: 500 }, (_, i) => `arg${i}-${'é'.repeat(30)}`)];
  const key = keyView({ comment: '€'.repeat(2000) });
  const { text } = promptText(loginQuestion(key, { process: sshProcess({ argv }) }), 'x');
  assert.ok(Buffer.byteLength(text, 'utf8') <= MAX_PROMPT_BYTES);
  assert.ok(text.includes('Destination:'), 'the destination survives a long argv');
  assert.ok(text.includes('…'));
  assert.ok(!text.includes('\ufffd'), 'cut on a character boundary');
});
