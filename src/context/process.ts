/**
 * The peer process behind a connection (POLICY.md §1 "process"): pid and uid from the
 * kernel (SO_PEERCRED, read by the server's peer check), then exe, argv, systemd unit and up
 * to 4 ancestors' exes from /proc. Read once, when the connection is accepted (a peer such
 * as `ssh-keygen -Y sign` exits right after its reply).
 *
 * Pid reuse: facts are only returned if the process read is provably the peer.
 * - With a pidfd (SO_PEERPIDFD, Linux 6.5+) the peer is pinned from connect() on:
 *   /proc/self/fdinfo/PIDFD naming the pid before the reads proves the peer is still alive,
 *   so the pid was not recycled between connect() and accept.
 * - In both cases the start time (/proc/PID/stat field 22) is read first and re-checked after
 *   the reads: a pid recycled while we read is caught. (Without a pidfd, a recycle between
 *   the peer's connect() and our accept cannot be seen; pid_max makes that window tiny.)
 * A failed check yields null fields, never another process's facts.
 *
 * Ancestors are followed through field 4 (ppid) of /proc/PID/stat; an ancestor whose start
 * time is later than its child's is a recycled pid (the real parent died and the child was
 * reparented) and ends the chain. The chain also ends at the first ancestor whose exe cannot
 * be read (another user's process), so `parents` is always a true prefix.
 *
 * Other platforms: macOS gives the peer's uid/gid (getpeereid / LOCAL_PEERCRED) and pid
 * (LOCAL_PEERPID), but no /proc: exe, argv, unit and parents are null there (proc_pidpath
 * and KERN_PROCARGS2 would give them; not implemented). Windows named pipes give the client
 * pid (GetNamedPipeClientProcessId) and nothing here reads it: every field but the given
 * pid/uid is null.
 */
import { readFile, readlink } from 'node:fs/promises';
import { closeSync } from 'node:fs';
import type { ProcessInfo } from './types';
import { parseCgroupUnit, parseCmdline, parsePidfdInfoPid, parseProcStat } from './proc-files';
import type { ProcStat } from './proc-files';

/** POLICY.md §1: up to 4 ancestors. */
export const MAX_PARENTS = 4;

export interface PeerIdentity {
  readonly pid: number;
  readonly uid: number;
}

export interface ReadProcessOptions {
  /**
   * A pidfd for the peer (Libc.peerPidfd on the connection's descriptor). readPeerProcess
   * takes ownership and closes it before it resolves.
   */
  readonly pidfd?: number;
  /** Default process.platform. */
  readonly platform?: NodeJS.Platform;
  /** Default '/proc' (tests point it elsewhere). */
  readonly procRoot?: string;
}

/** What the platform gives without /proc: the kernel's pid and uid, nothing guessed. */
export function bareProcessInfo(peer: PeerIdentity | undefined): ProcessInfo {
  return { pid: peer?.pid ?? null, uid: peer?.uid ?? null, exe: null, argv: null, unit: null, parents: null };
}

async function text(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function bytes(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

async function link(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch {
    return undefined;
  }
}

async function stat(proc: string, pid: number): Promise<ProcStat | undefined> {
  const t = await text(`${proc}/${pid}/stat`);
  return t === undefined ? undefined : parseProcStat(t);
}

/** Start times are decimal tick counts; compare as numbers of any size. */
function startedAfter(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b;
}

async function parentChain(proc: string, first: ProcStat): Promise<string[]> {
  const out: string[] = [];
  let child = first;
  while (out.length < MAX_PARENTS && child.ppid > 0) {
    const pid = child.ppid;
    const [st, exe] = await Promise.all([stat(proc, pid), link(`${proc}/${pid}/exe`)]);
    if (st === undefined || exe === undefined || startedAfter(st.startTime, child.startTime)) break;
    out.push(exe);
    child = st;
  }
  return out;
}

function pidfdNames(pidfd: number, pid: number, proc: string): Promise<boolean> {
  return text(`${proc}/self/fdinfo/${pidfd}`).then((t) => t !== undefined && parsePidfdInfoPid(t) === pid);
}

function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

/**
 * Reads the peer's facts. Never rejects: anything unreadable is null. Call it when the
 * connection is accepted and await it before the first reply is sent.
 */
export async function readPeerProcess(peer: PeerIdentity, opts: ReadProcessOptions = {}): Promise<ProcessInfo> {
  const pidfd = opts.pidfd;
  try {
    if ((opts.platform ?? process.platform) !== 'linux' || peer.pid <= 0) return bareProcessInfo(peer);
    const proc = opts.procRoot ?? '/proc';
    const dir = `${proc}/${peer.pid}`;
    // With a pidfd: the peer is alive now, so the pid names it until it exits.
    if (pidfd !== undefined && !(await pidfdNames(pidfd, peer.pid, proc))) return bareProcessInfo(peer);
    const st = await stat(proc, peer.pid);
    if (st === undefined) return bareProcessInfo(peer);
    const [exe, cmdline, cgroup, parents] = await Promise.all([
      link(`${dir}/exe`),
      bytes(`${dir}/cmdline`),
      text(`${dir}/cgroup`),
      parentChain(proc, st),
    ]);
    // Same start time (or gone: reads after its exit failed and are null): nothing read
    // belongs to a process that got the pid later.
    const again = await stat(proc, peer.pid);
    if (again !== undefined && again.startTime !== st.startTime) return bareProcessInfo(peer);
    return {
      pid: peer.pid,
      uid: peer.uid,
      exe: exe ?? null,
      argv: cmdline === undefined ? null : (parseCmdline(cmdline) ?? null),
      unit: cgroup === undefined ? null : (parseCgroupUnit(cgroup) ?? null),
      parents,
    };
  } catch {
    return bareProcessInfo(peer);
  } finally {
    closeQuietly(pidfd);
  }
}
