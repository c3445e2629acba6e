/**
 * Parsers for the few /proc files the request context reads (proc(5)). Pure: text in,
 * fields out; anything unexpected gives undefined.
 */

export interface ProcStat {
  readonly ppid: number;
  /** Field 22, starttime: clock ticks after boot. With the pid it names one process for ever. */
  readonly startTime: string;
}

/** /proc/PID/stat: the command name (field 2) may hold spaces and parentheses, so fields are counted after the last ')'. */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state): field N is fields[N - 3].
  const ppid = Number(fields[1]);
  const startTime = fields[19];
  if (!Number.isSafeInteger(ppid) || ppid < 0 || startTime === undefined || !/^\d+$/.test(startTime)) return undefined;
  return { ppid, startTime };
}

/** /proc/PID/cmdline: NUL-separated, NUL-terminated. Empty (a zombie, a kernel thread) gives undefined. */
export function parseCmdline(buf: Buffer): string[] | undefined {
  if (buf.length === 0) return undefined;
  const end = buf[buf.length - 1] === 0 ? buf.length - 1 : buf.length;
  return buf.toString('utf8', 0, end).split('\0');
}

const UNIT = /\.(service|scope)$/;

/**
 * The systemd unit or scope a process runs in, from /proc/PID/cgroup: the innermost
 * `*.service` / `*.scope` component of the unified (v2, "0::") hierarchy, or of the v1
 * `name=systemd` one. Undefined when there is none (no systemd, a container).
 */
export function parseCgroupUnit(text: string): string | undefined {
  let path: string | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) {
      path = line.slice(3);
      break;
    }
    const m = /^\d+:name=systemd:(.*)$/.exec(line);
    if (m !== null) path = m[1];
  }
  if (path === undefined) return undefined;
  const parts = path.split('/');
  for (let i = parts.length - 1; i >= 0; i--) {
    const p = parts[i];
    if (UNIT.test(p)) return p;
  }
  return undefined;
}

/** The `Pid:` line of /proc/self/fdinfo/N for a pidfd: -1 once the process is gone. */
export function parsePidfdInfoPid(text: string): number | undefined {
  const m = /^Pid:\s*(-?\d+)$/m.exec(text);
  return m === null ? undefined : Number(m[1]);
}
