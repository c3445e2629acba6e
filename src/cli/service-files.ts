/**
 * File helpers for `tsagent service install|uninstall`: read a file that may be missing,
 * and replace one atomically (temporary file + rename), so no reader ever sees half of it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ServiceError } from '../errors';

export function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/** The file's text, or undefined when nothing is there. */
export function readExisting(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw new ServiceError(`cannot read ${path}: ${errno(err)}`, { cause: err });
  }
}

/** Write to a temporary file next to `path`, then rename over it: never a half-written file. */
export function writeAtomically(path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, text, { mode, flag: 'wx' });
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created, or already renamed */
    }
    throw new ServiceError(`cannot write ${path}: ${errno(err)}`, { cause: err });
  }
}
