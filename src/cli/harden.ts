/**
 * Process protections OpenSSH's agent applies at start (ssh-agent.c main): not dumpable (no
 * core files, no ptrace or /proc/PID/mem access by other processes of the same user) and
 * RLIMIT_CORE 0; plus the libc handle the peer uid check needs. Beyond OpenSSH: glibc is told
 * to overwrite freed memory (M_PERTURB), so the copies of key bytes that OpenSSL and Node free
 * without clearing (encoder and decoder buffers, socket read buffers) do not linger (README
 * "What is in memory, and when"; signing barely allocates, and an A/B of RSA-2048 signing
 * with and without it shows no difference beyond the run-to-run spread). Missing native support is reported, never fatal.
 */
import { loadLibc } from '../native/libc';
import type { Libc } from '../native/libc';

export interface Protections {
  readonly libc?: Libc;
  /** Human-readable problems, each worth one warning line at start. */
  readonly warnings: readonly string[];
}

export function hardenProcess(): Protections {
  const loaded = loadLibc();
  if ('unavailable' in loaded) {
    return {
      warnings: [`native protections unavailable (${loaded.unavailable}): no peer uid check, process stays dumpable`],
    };
  }
  const warnings: string[] = [];
  if (!loaded.libc.setNotDumpable()) warnings.push('prctl(PR_SET_DUMPABLE, 0) failed: process stays dumpable');
  if (!loaded.libc.disableCoreDumps()) warnings.push('setrlimit(RLIMIT_CORE, 0) failed');
  if (!loaded.libc.scrubFreedMemory()) warnings.push('mallopt(M_PERTURB) failed: freed memory is not overwritten');
  // What a burst allocated in large blocks is given back when freed (issue 18).
  loaded.libc.keepLargeBlocksMapped?.();
  return { libc: loaded.libc, warnings };
}

/**
 * The environment variable that sets glibc's arena limit at the process's first malloc. The
 * daemon's launchers set it to 1: the background start for its child (daemonChildEnv), the
 * systemd unit with `Environment=`. By default every thread gets a malloc arena of its own
 * (V8's GC helpers, libuv's pool: up to 8 per core), and each arena keeps what it once held.
 * With 1000 keys and bench/'s list load behind it, one arena is 4–5 MB less RSS, with no
 * change in signing throughput beyond the noise (bench/RESULTS.md). Threads keep their
 * small-block caches (tcache), so the shared lock is rarely contended.
 */
export const MALLOC_ARENA_VARIABLE = 'MALLOC_ARENA_MAX';

/**
 * The background start's environment for its daemon child: one malloc arena, unless the user
 * set a value (theirs wins). `injected` says the child must drop the variable again once it
 * runs (glibc has read it by then), so the programs the agent starts (askpass, the PKCS#11
 * helper) do not inherit what the user never set.
 */
export function daemonChildEnv(env: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; injected: boolean } {
  if (env[MALLOC_ARENA_VARIABLE] !== undefined) return { env, injected: false };
  return { env: { ...env, [MALLOC_ARENA_VARIABLE]: '1' }, injected: true };
}

/**
 * The same limit through mallopt, for an agent whose launcher did not set MALLOC_ARENA_MAX
 * (`start -D` / `-d` or `start CMD` run by hand): called by the start command just before
 * this process starts running the agent. glibc applies it only to threads that have not
 * allocated yet; measured with malloc_stats after 1000 keys and a list load, the agent then
 * has 2 arenas instead of 6 (bench/RESULTS.md).
 */
export function limitMallocArenas(env: NodeJS.ProcessEnv): void {
  if (env[MALLOC_ARENA_VARIABLE] !== undefined) return;
  const loaded = loadLibc();
  if ('libc' in loaded) loaded.libc.shareOneArena?.();
}
