/**
 * Reads a small file the user names (the config, a key file) without trusting what is at the
 * path: opened non-blocking (a FIFO must never stall the agent), refused unless it is a
 * regular file, read once into memory up to a size cap, and refused when it changed while
 * being read (size or mtime differ between the stat before and after). Callers parse only
 * the returned bytes, so later changes to the file cannot mix two versions.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { Stats } from 'node:fs';

export interface BoundedFile {
  readonly data: Buffer;
  /** The stat taken after the read (mode, uid for permission checks). */
  readonly stat: Stats;
}

/** Why a read was refused; the caller words the error for its file kind. */
export type BoundedReadProblem =
  | { readonly kind: 'missing' }
  | { readonly kind: 'unreadable'; readonly code: string }
  | { readonly kind: 'not-regular'; readonly what: string }
  | { readonly kind: 'too-large'; readonly limit: number }
  | { readonly kind: 'changed' };

export type BoundedReadResult =
  { readonly ok: true; readonly file: BoundedFile } | { readonly ok: false; readonly problem: BoundedReadProblem };

function describeType(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'a special file';
}

export function readBounded(path: string, limit: number): BoundedReadResult {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    return { ok: false, problem: code === 'ENOENT' || code === 'ENOTDIR' ? { kind: 'missing' } : { kind: 'unreadable', code } };
  }
  try {
    const before = fstatSync(fd);
    if (!before.isFile()) return { ok: false, problem: { kind: 'not-regular', what: describeType(before) } };
    if (before.size > limit) return { ok: false, problem: { kind: 'too-large', limit } };
    // One byte more than the cap tells a file that grew past it from one that fits exactly.
    const buf = Buffer.alloc(limit + 1);
    let got = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, got, buf.length - got, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        return {
          ok: false,
          problem: code === 'EISDIR' ? { kind: 'not-regular', what: 'a directory' } : { kind: 'unreadable', code },
        };
      }
      if (n === 0) break;
      got += n;
      if (got > limit) {
        buf.fill(0);
        return { ok: false, problem: { kind: 'too-large', limit } };
      }
    }
    const after = fstatSync(fd);
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || got !== after.size) {
      buf.fill(0);
      return { ok: false, problem: { kind: 'changed' } };
    }
    const data = Buffer.from(buf.subarray(0, got));
    buf.fill(0);
    return { ok: true, file: { data, stat: after } };
  } finally {
    closeSync(fd);
  }
}

export function describeProblem(p: BoundedReadProblem): string {
  switch (p.kind) {
    case 'missing':
      return 'no such file';
    case 'unreadable':
      return `cannot read (${p.code})`;
    case 'not-regular':
      return `is ${p.what}, not a regular file`;
    case 'too-large':
      return `larger than ${p.limit} bytes`;
    case 'changed':
      return 'changed while being read; try again';
  }
}
