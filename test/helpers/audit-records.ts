/** A complete sign record in the POLICY.md §6 shape, for audit log tests. */
import type { AuditRecord } from '../../src/agent/ports';

export function sampleRecord(time: string, over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time,
    event: 'sign',
    decision: 'allow',
    reason: 'rule 2',
    key: {
      fingerprint: 'SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
      comment: 'me@laptop',
      name: 'github',
      type: 'ssh-ed25519',
    },
    process: { pid: 4242, uid: 1000, exe: '/usr/bin/ssh', argv: ['ssh', 'gh'], unit: null, parents: ['/usr/bin/git'] },
    destination: {
      host: 'github.com',
      names: ['github.com'],
      port: null,
      hostKey: 'SHA256:hk',
      user: 'git',
      forwarded: false,
      via: [],
    },
    purpose: 'login',
    ms: 0.4,
    ...over,
  };
}
