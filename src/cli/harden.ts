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
