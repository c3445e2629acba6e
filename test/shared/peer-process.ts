/**
 * Small process helpers for tests that start real peers: find a binary (a missing peer is a
 * failure under CI, never a silent skip), wait for a socket (bounded), kill by PID.
 */
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, lstatSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export function findPeer(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The peer's path; throws when it is missing (suites that may skip use requirePeer). */
export function findPeerOrFail(name: string): string {
  const p = findPeer(name);
  if (p === undefined) throw new Error(`required peer ${name} is not installed`);
  return p;
}

export async function waitForSocket(path: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child !== undefined && child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before ${path} appeared`);
    let isSock = false;
    try {
      isSock = lstatSync(path).isSocket();
    } catch {
      /* not yet */
    }
    if (isSock) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect(path);
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for socket ${path}`);
}

/** SIGTERM by PID, SIGKILL after a grace period; resolves when the process is gone. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  await gone;
  clearTimeout(timer);
}
