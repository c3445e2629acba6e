/**
 * The peer process behind a connection (POLICY.md §1 "process"): pid and uid from the
 * kernel (SO_PEERCRED, read by the server's peer check), then exe, argv, systemd unit and up
 * to 4 ancestors' exes from /proc. Read once per connection, before the reply that needs
 * them (a peer such as `ssh-keygen -Y sign` exits right after its reply): at the first
 * request that asks when a pidfd pins the peer, else when the connection is accepted
 * (peerProcessSource).
 *
 * Pid reuse: facts are only returned if the process read is provably the peer.
 * - With a pidfd (SO_PEERPIDFD, Linux 6.5+) the peer is pinned from connect() on:
 *   /proc/self/fdinfo/PIDFD still naming the pid after the reads proves the peer held the
 *   pid throughout, whenever they happen.
 * - Without one, the start time (/proc/PID/stat field 22) is read first and re-checked
 *   after the reads: a pid recycled while we read is caught. (A recycle between the peer's
 *   connect() and our accept cannot be seen; pid_max makes that window tiny.)
 * A failed check yields null fields, never another process's facts.
 *
 * Ancestors are followed through field 4 (ppid) of /proc/PID/stat; an ancestor whose start
 * time is later than its child's is a recycled pid (the real parent died and the child was
 * reparented) and ends the chain. The chain also ends at the first ancestor whose exe cannot
 * be read (another user's process), so `parents` is always a true prefix.
 *
 * exe is the kernel's link as is: a binary replaced since the process started (a package
 * upgrade) reads `/usr/bin/ssh (deleted)`, which rules naming `/usr/bin/ssh` do not match —
 * the file running is not the one there now.
 *
 * Other platforms: macOS gives the peer's uid/gid (getpeereid / LOCAL_PEERCRED) and pid
 * (LOCAL_PEERPID), but no /proc: exe, argv, unit and parents are null there (proc_pidpath
 * and KERN_PROCARGS2 would give them; not implemented). Windows named pipes give the client
 * pid (GetNamedPipeClientProcessId) and nothing here reads it: every field but the given
 * pid/uid is null.
 */
import { closeSync, fstatSync, openSync, readSync, readlinkSync, statfsSync } from 'node:fs';
import { rememberBounded } from '../bounded-map';
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
   * takes ownership and closes it before it returns.
   */
  readonly pidfd?: number;
  /** Default process.platform. */
  readonly platform?: NodeJS.Platform;
  /** Default '/proc' (tests point it elsewhere). */
  readonly procRoot?: string;
  /**
   * The exe link read when the connection was accepted (peerProcessSource). Facts read later
   * must show the same exe: a peer that connected, handed the socket to a child and then
   * exec'd another program is not described as that program.
   */
  readonly exeAtAccept?: string | null;
}

/** What the platform gives without /proc: the kernel's pid and uid, nothing guessed. */
export function bareProcessInfo(peer: PeerIdentity | undefined): ProcessInfo {
  return { pid: peer?.pid ?? null, uid: peer?.uid ?? null, exe: null, argv: null, unit: null, parents: null };
}

/**
 * /proc files report size 0, so readFileSync probes and re-reads; one open, reads into a
 * scratch buffer until EOF, and one close is the least a read can cost.
 */
const SCRATCH_SIZE = 4096;
let scratch = Buffer.allocUnsafe(SCRATCH_SIZE);

/** Reads the whole file into `scratch`; its length, or undefined when it cannot be read. */
function readIntoScratch(path: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    let len = 0;
    for (;;) {
      if (len === scratch.length) {
        const bigger = Buffer.allocUnsafe(scratch.length * 2);
        scratch.copy(bigger, 0, 0, len);
        scratch = bigger;
      }
      const n = readSync(fd, scratch, len, scratch.length - len, null);
      if (n <= 0) return len;
      len += n;
    }
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function shrinkScratch(): void {
  // A huge command line grew it: do not keep megabytes for the next small read.
  if (scratch.length > 16 * SCRATCH_SIZE) scratch = Buffer.allocUnsafe(SCRATCH_SIZE);
}

function bytes(path: string): Buffer | undefined {
  const len = readIntoScratch(path);
  if (len === undefined) return undefined;
  const out = Buffer.from(scratch.subarray(0, len));
  shrinkScratch();
  return out;
}

function text(path: string): string | undefined {
  const len = readIntoScratch(path);
  if (len === undefined) return undefined;
  const out = scratch.toString('utf8', 0, len);
  shrinkScratch();
  return out;
}

function link(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function stat(proc: string, pid: number): ProcStat | undefined {
  const t = text(`${proc}/${pid}/stat`);
  return t === undefined ? undefined : parseProcStat(t);
}

/** Start times are decimal tick counts; compare as numbers of any size. */
function startedAfter(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b;
}

function parentChain(proc: string, first: ProcStat): string[] {
  const out: string[] = [];
  let child = first;
  while (out.length < MAX_PARENTS && child.ppid > 0) {
    const pid = child.ppid;
    const st = stat(proc, pid);
    const exe = st === undefined ? undefined : link(`${proc}/${pid}/exe`);
    if (st === undefined || exe === undefined || startedAfter(st.startTime, child.startTime)) break;
    out.push(exe);
    child = st;
  }
  return out;
}

function pidfdNames(pidfd: number, pid: number, proc: string): boolean {
  const t = text(`${proc}/self/fdinfo/${pidfd}`);
  return t !== undefined && parsePidfdInfoPid(t) === pid;
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
 * The same process connecting again (a shell loop, a load generator) costs a stat and a
 * readlink: its facts are kept while pid, start time, parent pid and exe are unchanged.
 * (exe catches an execve, which keeps the pid and start time.)
 */
interface CachedProcess {
  readonly startTime: string;
  readonly ppid: number;
  readonly exe: string | undefined;
  readonly info: ProcessInfo;
}

const CACHE_LIMIT = 256;
const cache = new Map<string, CachedProcess>();

/** Drops the remembered facts (tests measure a first read with it). */
export function clearProcessCache(): void {
  cache.clear();
  byProcess.clear();
}

/**
 * pidfs (Linux 6.9+) gives every process its own pidfd inode, never reused, so a pidfd's
 * inode number names one process for good. A peer whose pidfd names a process already
 * described is recognised without opening a /proc file by pid (the stat, the fdinfo check):
 * one fstat on the pidfd and the exe link (which catches an execve). On older kernels pidfds
 * share one anonymous inode and this path is off.
 */
const PIDFS_MAGIC = 0x50494446;
let pidfsChecked: boolean | undefined;

function onPidfs(pidfd: number): boolean {
  if (pidfsChecked === undefined) {
    try {
      pidfsChecked = statfsSync(`/proc/self/fd/${pidfd}`).type === PIDFS_MAGIC;
    } catch {
      pidfsChecked = false;
    }
  }
  return pidfsChecked;
}

/** Facts by pidfs inode, with the exe they were read with. */
const byProcess = new Map<string, { readonly exe: string | null; readonly info: ProcessInfo }>();

function processId(pidfd: number): string | undefined {
  try {
    const st = fstatSync(pidfd, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

function readFacts(
  peer: PeerIdentity,
  proc: string,
  pidfd: number | undefined,
  atAccept: string | null | undefined,
): ProcessInfo {
  const id = pidfd !== undefined && proc === '/proc' && onPidfs(pidfd) ? processId(pidfd) : undefined;
  if (id !== undefined) {
    const known = byProcess.get(id);
    if (known !== undefined && known.info.pid === peer.pid && known.info.uid === peer.uid) {
      // The same process as before, running what it ran then (at accept, when given).
      const exe = atAccept !== undefined ? atAccept : (link(`${proc}/${peer.pid}/exe`) ?? null);
      if (exe === known.exe) return known.info;
    }
  }
  const info = readFactsByPid(peer, proc, pidfd);
  // It exec'd since it connected: what it runs now is not who connected.
  if (atAccept !== undefined && info.exe !== atAccept) return bareProcessInfo(peer);
  if (id !== undefined && info.exe !== null) rememberBounded(byProcess, id, { exe: info.exe, info }, CACHE_LIMIT);
  return info;
}

function readFactsByPid(peer: PeerIdentity, proc: string, pidfd: number | undefined): ProcessInfo {
  const dir = `${proc}/${peer.pid}`;
  const st = stat(proc, peer.pid);
  if (st === undefined) return bareProcessInfo(peer);
  const exe = link(`${dir}/exe`);
  const key = `${proc}\0${peer.pid}`;
  const hit = cache.get(key);
  let info: ProcessInfo;
  if (
    hit !== undefined &&
    hit.startTime === st.startTime &&
    hit.ppid === st.ppid &&
    hit.exe === exe &&
    hit.info.uid === peer.uid
  ) {
    info = hit.info;
  } else {
    const cmdline = bytes(`${dir}/cmdline`);
    const cgroup = text(`${dir}/cgroup`);
    info = {
      pid: peer.pid,
      uid: peer.uid,
      exe: exe ?? null,
      argv: cmdline === undefined ? null : (parseCmdline(cmdline) ?? null),
      unit: cgroup === undefined ? null : (parseCgroupUnit(cgroup) ?? null),
      parents: parentChain(proc, st),
    };
  }
  if (pidfd !== undefined) {
    // The pidfd names the peer of connect(): still naming the pid after the reads, the peer
    // held it all along, so everything read was its.
    if (!pidfdNames(pidfd, peer.pid, proc)) return bareProcessInfo(peer);
  } else {
    // Same start time (or gone: reads after its exit failed and are null): nothing read
    // belongs to a process that got the pid later.
    const again = stat(proc, peer.pid);
    if (again !== undefined && again.startTime !== st.startTime) return bareProcessInfo(peer);
  }
  if (info !== hit?.info) rememberBounded(cache, key, { startTime: st.startTime, ppid: st.ppid, exe, info }, CACHE_LIMIT);
  return info;
}

/**
 * Reads the peer's facts. Never throws: anything unreadable is null. Without a pidfd, call
 * it when the connection is accepted, before the first reply. Synchronous on purpose: /proc is in
 * memory, the reads are a dozen system calls (a few µs each), and the thread-pool round
 * trips of fs/promises cost more than they save (measured in test/unit/peer-process.test.ts).
 */
export function readPeerProcess(peer: PeerIdentity, opts: ReadProcessOptions = {}): ProcessInfo {
  try {
    if ((opts.platform ?? process.platform) !== 'linux' || peer.pid <= 0) return bareProcessInfo(peer);
    return readFacts(peer, opts.procRoot ?? '/proc', opts.pidfd, opts.exeAtAccept);
  } catch {
    return bareProcessInfo(peer);
  } finally {
    closeQuietly(opts.pidfd);
  }
}

/** The peer's facts, read when first asked for. */
export interface ProcessSource {
  /** The facts: read on the first call, the same object after. */
  read(): ProcessInfo;
  /** Closes what pins the peer (its pidfd) if the facts were never read. */
  release(): void;
}

/**
 * The peer's facts for a connection just accepted. Pinned by a pidfd, the read waits for the
 * first request that needs them (a connection that only lists keys, with no audit log and no
 * rules, never reads /proc): the pidfd proves the pid still names the peer whenever the read
 * happens, and the exe link read now proves it still runs what it ran when it connected
 * (else the facts are bare). Without a pidfd, only the start time guards the pid, so the
 * read happens now, while the window for a recycle is smallest.
 */
export function peerProcessSource(peer: PeerIdentity, opts: ReadProcessOptions = {}): ProcessSource {
  if (opts.pidfd === undefined || (opts.platform ?? process.platform) !== 'linux') {
    const info = readPeerProcess(peer, opts);
    return { read: () => info, release: () => undefined };
  }
  let info: ProcessInfo | undefined;
  // One readlink now, so an exec between connect() and the read is seen (readFacts).
  let pending: ReadProcessOptions | undefined = {
    ...opts,
    exeAtAccept: link(`${opts.procRoot ?? '/proc'}/${peer.pid}/exe`) ?? null,
  };
  return {
    read() {
      // Released (the connection closed) without a read: nothing pins the peer any more.
      info ??= pending === undefined ? bareProcessInfo(peer) : readPeerProcess(peer, pending);
      pending = undefined;
      return info;
    },
    release() {
      if (pending !== undefined) closeQuietly(pending.pidfd);
      pending = undefined;
    },
  };
}
