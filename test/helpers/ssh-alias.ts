/**
 * An ssh config that reaches a test sshd through an alias with HostKeyAlias (issue 12's
 * "reached through an ssh config alias"): ssh verifies the host key under `hostKeyAlias` in
 * `knownHosts` only, and offers nothing but the agent's keys.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sshd } from './sshd';

/** Writes HOME/ssh_config and returns its path (for `ssh -F`). */
export function aliasSshConfig(
  sshd: Sshd,
  home: string,
  alias: string,
  hostKeyAlias: string,
  knownHosts = join(home, '.ssh', 'known_hosts'),
): string {
  const cfg = join(home, 'ssh_config');
  const lines = [
    `Host ${alias}`,
    '  HostName 127.0.0.1',
    `  Port ${sshd.port}`,
    `  User ${sshd.user}`,
    `  HostKeyAlias ${hostKeyAlias}`,
    `  UserKnownHostsFile ${knownHosts}`,
    '  GlobalKnownHostsFile /dev/null',
    '  StrictHostKeyChecking yes',
    '  UpdateHostKeys no',
    '  BatchMode yes',
    '  IdentityFile none',
    '  PreferredAuthentications publickey',
    '  ControlMaster no',
    '  ControlPath none',
    '  LogLevel ERROR',
    '',
  ];
  writeFileSync(cfg, lines.join('\n'));
  return cfg;
}
