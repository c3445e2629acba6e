/**
 * The lines `ssh-agent` prints for `eval` (ssh-agent.c main): sh or csh syntax. Paths are
 * quoted only when they hold characters a shell would interpret.
 */
export type ShellStyle = 'sh' | 'csh';

export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** csh when $SHELL ends in "csh" (csh, tcsh), sh otherwise — OpenSSH's rule. */
export function detectShell(env: NodeJS.ProcessEnv): ShellStyle {
  return (env.SHELL ?? '').endsWith('csh') ? 'csh' : 'sh';
}

export function startLines(style: ShellStyle, socketPath: string, pid: number, foreground: boolean): string {
  const sock = shellQuote(socketPath);
  if (style === 'csh') {
    return `setenv SSH_AUTH_SOCK ${sock};\n` + (foreground ? '' : `setenv SSH_AGENT_PID ${pid};\n`) + `echo Agent pid ${pid};\n`;
  }
  return (
    `SSH_AUTH_SOCK=${sock}; export SSH_AUTH_SOCK;\n` +
    (foreground ? '' : `SSH_AGENT_PID=${pid}; export SSH_AGENT_PID;\n`) +
    `echo Agent pid ${pid};\n`
  );
}

export function killLines(style: ShellStyle, pid: number): string {
  if (style === 'csh') return `unsetenv SSH_AUTH_SOCK;\nunsetenv SSH_AGENT_PID;\necho Agent pid ${pid} killed;\n`;
  return `unset SSH_AUTH_SOCK;\nunset SSH_AGENT_PID;\necho Agent pid ${pid} killed;\n`;
}
