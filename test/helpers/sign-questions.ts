/**
 * SignQuestions for approval tests: fresh ed25519 public keys (node:crypto) wrapped in the
 * KeyView the gate gives approvals/, with the request context a real `ssh` login would have.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { KeyView, SignQuestion } from '../../src/agent/ports';
import type { Destination, ProcessInfo } from '../../src/context/types';
import { fingerprintOf } from './keys';

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** A new ed25519 public key as a KeyView. */
export function keyView(opts: { comment?: string; name?: string | null; confirm?: boolean } = {}): KeyView {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  const raw = Buffer.from(jwk.x ?? '', 'base64url');
  const blob = Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(raw)]);
  return {
    blob,
    fingerprint: fingerprintOf(blob),
    comment: opts.comment ?? 'me@laptop',
    type: 'ssh-ed25519',
    name: opts.name === undefined ? null : opts.name,
    source: 'added',
    confirm: opts.confirm ?? true,
  };
}

export function sshProcess(over: Partial<ProcessInfo> = {}): ProcessInfo {
  return {
    pid: 4242,
    uid: 1000,
    exe: '/usr/bin/ssh',
    argv: ['ssh', '-p', '2222', 'git@build.example.com'],
    unit: null,
    parents: ['/usr/bin/bash'],
    ...over,
  };
}

export function destination(over: Partial<Destination> = {}): Destination {
  return {
    hostKey: 'SHA256:AAAAhostkeyfingerprintAAAAAAAAAAAAAAAAAAAAAA',
    names: ['build.example.com'],
    host: 'build.example.com',
    port: 2222,
    user: 'git',
    forwarded: false,
    via: [],
    ...over,
  };
}

export function loginQuestion(key: KeyView, over: Partial<SignQuestion> = {}): SignQuestion {
  return { key, process: sshProcess(), destination: destination(), purpose: 'login', ...over };
}
