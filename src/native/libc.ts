/**
 * The few libc calls Node has no API for, through koffi (an optional dependency that ships
 * prebuilt binaries, so it installs without a compiler or install scripts):
 * getsockopt(SO_PEERCRED, SO_PEERPIDFD), prctl(PR_SET_DUMPABLE), setrlimit(RLIMIT_CORE),
 * mallopt(M_PERTURB, M_MMAP_THRESHOLD, M_ARENA_MAX) and malloc_trim.
 * Linux only (the constants below are the x86-64/arm64 values). Where koffi or libc cannot be
 * loaded, `loadLibc()` says why and the agent runs without these protections.
 */
import { loadKoffi } from './koffi-loader';

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export interface Libc {
  /** The credentials of the process at the other end of a Unix socket, or undefined on error. */
  peerCredentials(fd: number): PeerCredentials | undefined;
  /**
   * A pidfd for the process at the other end of a Unix socket (SO_PEERPIDFD, Linux 6.5+): it
   * pins that process, so its pid cannot be mistaken for a recycled one. The caller owns (and
   * must close) the descriptor. Undefined where the kernel has no SO_PEERPIDFD.
   */
  peerPidfd?(fd: number): number | undefined;
  /** prctl(PR_SET_DUMPABLE, 0): no core dumps, no ptrace by the same uid, /proc/PID owned by root. */
  setNotDumpable(): boolean;
  /** setrlimit(RLIMIT_CORE, {0, 0}). */
  disableCoreDumps(): boolean;
  /**
   * mallopt(M_PERTURB): glibc overwrites every block on free (and fills fresh malloc blocks),
   * so memory OpenSSL or Node freed without clearing holds no stale key bytes.
   */
  scrubFreedMemory(): boolean;
  /** malloc_trim(0): hands memory freed inside glibc's heap back to the kernel. */
  trimFreedMemory?(): boolean;
  /**
   * mallopt(M_MMAP_THRESHOLD, 128 KiB): large blocks stay mmap'd, so their memory goes back to
   * the kernel when freed. glibc otherwise raises the threshold after the first such free and
   * keeps later large blocks (a burst of list replies) in its heap for good.
   */
  keepLargeBlocksMapped?(): boolean;
  /**
   * mallopt(M_ARENA_MAX, 1): threads that have not allocated yet share glibc's main heap
   * instead of each getting an arena of its own (see cli/harden.ts limitMallocArenas).
   */
  shareOneArena?(): boolean;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERPIDFD = 77;
const PR_SET_DUMPABLE = 4;
const RLIMIT_CORE = 4;
/** glibc malloc.h; the byte written over freed blocks (fresh blocks get its complement, 0). */
const M_PERTURB = -6;
/** glibc malloc.h M_MMAP_THRESHOLD; setting it also turns off glibc's dynamic threshold. */
const M_MMAP_THRESHOLD = -3;
/** glibc malloc.h M_ARENA_MAX. */
const M_ARENA_MAX = -8;
/** glibc's default: blocks this large (a 220 KB list reply) are mmap'd and unmapped on free. */
const MMAP_THRESHOLD_BYTES = 128 * 1024;
const PERTURB_BYTE = 0xff;

type LoadResult = { readonly libc: Libc } | { readonly unavailable: string };

let cached: LoadResult | undefined;

export function loadLibc(platform: NodeJS.Platform = process.platform, arch: string = process.arch): LoadResult {
  if (cached !== undefined) return cached;
  if (platform !== 'linux' || (arch !== 'x64' && arch !== 'arm64')) {
    cached = { unavailable: `not supported on ${platform}/${arch}` };
    return cached;
  }
  try {
    // Optional dependency: loaded lazily so a missing or broken install is a warning.
    const { koffi } = loadKoffi();
    const lib = koffi.load('libc.so.6');
    const rlimit = koffi.struct('tsagent_rlimit', { rlim_cur: 'uint64_t', rlim_max: 'uint64_t' });
    // Raw buffers rather than koffi structs and arrays: decoding an out-struct into a fresh
    // object costs more than the system call, and this runs at every accept. Both supported
    // architectures are little-endian.
    const getsockopt = lib.func('getsockopt', 'int', ['int', 'int', 'int', 'uint8_t *', 'uint8_t *']);
    const optval = Buffer.alloc(12);
    const optlen = Buffer.alloc(4);
    /** getsockopt(fd, SOL_SOCKET, option) into `optval`; the length written, or -1. */
    const socketOption = (fd: number, option: number, size: number): number => {
      optlen.writeUInt32LE(size, 0);
      const rc = getsockopt(fd, SOL_SOCKET, option, optval, optlen) as number;
      return rc === 0 ? optlen.readUInt32LE(0) : -1;
    };
    const prctl = lib.func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)');
    const setrlimit = lib.func('int setrlimit(int, const tsagent_rlimit *)');
    // glibc's; a libc without it only loses the scrubbing, not the other calls.
    let mallopt: ((option: number, value: number) => unknown) | undefined;
    let mallocTrim: ((pad: number) => unknown) | undefined;
    try {
      mallopt = lib.func('int mallopt(int, int)');
      mallocTrim = lib.func('int malloc_trim(size_t)');
    } catch {
      mallopt ??= undefined;
    }
    void rlimit;
    const libc: Libc = {
      peerCredentials(fd) {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        if (socketOption(fd, SO_PEERCRED, 12) !== 12) return undefined;
        return { pid: optval.readInt32LE(0), uid: optval.readUInt32LE(4), gid: optval.readUInt32LE(8) };
      },
      peerPidfd(fd) {
        if (socketOption(fd, SO_PEERPIDFD, 4) !== 4) return undefined;
        const pidfd = optval.readInt32LE(0);
        return pidfd >= 0 ? pidfd : undefined;
      },
      setNotDumpable: () => (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) as number) === 0,
      disableCoreDumps: () => (setrlimit(RLIMIT_CORE, { rlim_cur: 0, rlim_max: 0 }) as number) === 0,
      // mallopt returns 1 on success.
      scrubFreedMemory: () => mallopt !== undefined && (mallopt(M_PERTURB, PERTURB_BYTE) as number) === 1,
      // Returns 1 when memory was released.
      trimFreedMemory: () => mallocTrim !== undefined && (mallocTrim(0) as number) === 1,
      keepLargeBlocksMapped: () => mallopt !== undefined && (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) as number) === 1,
      shareOneArena: () => mallopt !== undefined && (mallopt(M_ARENA_MAX, 1) as number) === 1,
    };
    cached = { libc };
  } catch (err) {
    cached = { unavailable: err instanceof Error ? err.message : String(err) };
  }
  return cached;
}
