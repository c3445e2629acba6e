/**
 * The audit log writer (POLICY.md §6): an AuditSink that queues records synchronously and
 * writes each batch with one writev(2) to an O_APPEND file (0600, directory 0700, created if
 * missing), rotating by size to FILE.1 … FILE.5. The file is opened on the first write, so
 * an agent that records nothing never touches it. A batch with a sign record is written at
 * the end of the event-loop turn (setImmediate: after the I/O callbacks of the turn, so the
 * signs of every connection that was readable share one writev(2)), and the server holds
 * each sign reply until its batch is written (afterWrite); other records wait up to
 * BATCH_MS for company; flush() writes at once.
 *
 * The log never takes the agent down: a removed file is re-created, a replaced one
 * reopened, and a failure to write is reported once (until writing works again) and the
 * batch dropped. A regular file is opened to append on a fresh line: a write cut short (a
 * full disk, an agent killed mid-write) leaves one damaged line, never two records run together.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  writeSync,
  writevSync,
} from 'node:fs';
import { dirname } from 'node:path';
import type { AuditRecord, AuditSink } from '../agent/ports';
import { AUDIT_ROTATIONS, DEFAULT_AUDIT_MAX_SIZE } from './paths';
import { RecordEncoder } from './serialize';

export interface AuditFileOptions {
  readonly path: string;
  /** Rotate before a write would take the file past this many bytes. Default 10 MB. */
  readonly maxSize?: number;
  /** Rotated files kept. Default 5. */
  readonly rotations?: number;
  /** Minimum time between checks that the path still names the open file. Default 100 ms. */
  readonly pathCheckMs?: number;
  /** Told once per failure streak; never given record contents. */
  readonly warn?: (message: string) => void;
}

/**
 * Records no reply waits for (list, add, lock, …) are gathered for up to this long, or
 * MAX_BATCH records, and written together: a client listing in a loop costs one write per
 * batch, not one per list. Sign records are written at the end of the turn they were made
 * in, before their replies leave.
 */
const BATCH_MS = 5;
const MAX_BATCH = 256;

/**
 * O_NONBLOCK changes nothing for a regular file; a FIFO put at the path fails to open when
 * no one reads it, and fails to write when its reader stops, instead of blocking the agent.
 */
const OPEN_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;
/**
 * How often the path is checked for a removed or replaced file: a stat per write would be
 * a third of a record's cost, and records written in the window after a user removes the
 * file go where they asked (nowhere).
 */
const DEFAULT_PATH_CHECK_MS = 100;

function errorCode(err: unknown): string {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'error';
}

export class AuditFileSink implements AuditSink {
  readonly path: string;
  private readonly maxSize: number;
  private readonly rotations: number;
  private readonly warn: (message: string) => void;
  /** The records not yet written, already encoded. */
  private readonly queue = new RecordEncoder();
  /** Replies waiting for the queued records to be written. */
  private waiting: Array<() => void> = [];
  private fd: number | undefined;
  private ino = -1;
  private checkedAt = 0;
  private readonly pathCheckMs: number;
  private size = 0;
  /** A write at the end of this event-loop turn is scheduled. */
  private soon = false;
  /** A write within BATCH_MS is scheduled. */
  private later: NodeJS.Timeout | undefined;
  private failing = false;
  private closed = false;
  /** A write failed part way: the next one starts with a newline. */
  private torn = false;
  /** The open file is a regular file: rotated by size, checked for a partial last line. */
  private regular = true;

  constructor(opts: AuditFileOptions) {
    this.path = opts.path;
    this.maxSize = opts.maxSize ?? DEFAULT_AUDIT_MAX_SIZE;
    this.rotations = opts.rotations ?? AUDIT_ROTATIONS;
    this.warn = opts.warn ?? (() => undefined);
    this.pathCheckMs = opts.pathCheckMs ?? DEFAULT_PATH_CHECK_MS;
  }

  record(r: AuditRecord): void {
    if (this.closed) return;
    this.queue.add(r);
    if (r.event === 'sign' || this.queue.count >= MAX_BATCH) this.writeSoon();
    else this.writeLater();
  }

  afterWrite(then: () => void): boolean {
    if (this.queue.length === 0) return false;
    this.waiting.push(then);
    this.writeSoon();
    return true;
  }

  private writeSoon(): void {
    if (this.soon) return;
    this.soon = true;
    setImmediate(this.writeBatch);
  }

  private writeLater(): void {
    if (this.soon || this.later !== undefined) return;
    this.later = setTimeout(this.writeBatch, BATCH_MS);
    // close() writes what is queued: a pending batch need not keep a process alive.
    this.later.unref();
  }

  private readonly writeBatch = (): void => {
    this.soon = false;
    this.flush();
  };

  flush(): void {
    if (this.later !== undefined) {
      clearTimeout(this.later);
      this.later = undefined;
    }
    this.writeQueued();
    if (this.waiting.length === 0) return;
    const waiting = this.waiting;
    this.waiting = [];
    for (const then of waiting) then();
  }

  private writeQueued(): void {
    if (this.queue.length > 0) this.queue.writeTo((buffers, length) => this.write(buffers, length));
  }

  /** Flushes and closes the file; later records are ignored. */
  close(): void {
    this.flush();
    this.closed = true;
    this.closeFd();
  }

  private write(buffers: readonly Buffer[], length: number): void {
    const progress = { written: 0 };
    try {
      this.ensureOpen();
      if (this.regular && this.size > 0 && this.size + length > this.maxSize) {
        this.rotate();
        this.ensureOpen();
      }
      // A batch cut short before (a FIFO that filled) left a partial line: end it first.
      writeAll(this.fd!, this.torn ? [NEWLINE, ...buffers] : buffers, progress);
      this.size += progress.written;
      this.torn = false;
      this.failing = false;
    } catch (err) {
      if (progress.written > 0) this.torn = true;
      this.closeFd();
      if (!this.failing) this.warn(`audit log ${this.path} cannot be written (${errorCode(err)}); records are being dropped`);
      this.failing = true;
    }
  }

  /** Opens the file if it is not open, or reopens it when it was removed or replaced. */
  private ensureOpen(): void {
    if (this.fd !== undefined) {
      const now = Date.now();
      if (now - this.checkedAt < this.pathCheckMs) return;
      this.checkedAt = now;
      const st = statSync(this.path, { throwIfNoEntry: false });
      if (st !== undefined && st.ino === this.ino) return;
      this.closeFd();
    }
    const dir = dirname(this.path);
    const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Only a directory we created is ours to restrict (the umask may have loosened it).
    if (created !== undefined) chmodQuietly(dir);
    const fd = openSync(this.path, OPEN_FLAGS, 0o600);
    try {
      const st = fstatSync(fd);
      if ((st.mode & 0o777) !== 0o600) fchmodSync(fd, 0o600);
      this.ino = st.ino;
      this.regular = st.isFile();
      this.size = st.size + (this.regular ? startOnFreshLine(this.path, fd, st) : 0);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.fd = fd;
    this.checkedAt = Date.now();
  }

  private rotate(): void {
    this.closeFd();
    for (let i = this.rotations - 1; i >= 1; i--) renameQuietly(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    if (this.rotations >= 1) renameQuietly(this.path, `${this.path}.1`);
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
    this.fd = undefined;
  }
}

/**
 * Ends a damaged last line, left by a write that was cut short, with a newline so the next
 * record starts a line of its own (readers skip the damaged one). Returns the bytes written.
 * The last byte is read through a read-only descriptor of its own (the log's is write-only,
 * and a file the user made write-only stays usable); when it cannot be read, nothing is added.
 */
function startOnFreshLine(path: string, fd: number, st: { readonly size: number; readonly ino: number }): number {
  if (st.size === 0) return 0;
  const last = Buffer.alloc(1);
  let rfd: number | undefined;
  try {
    rfd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    // The path may name another file by now: only the one being appended to counts.
    if (fstatSync(rfd).ino !== st.ino || readSync(rfd, last, 0, 1, st.size - 1) !== 1) return 0;
  } catch {
    return 0;
  } finally {
    if (rfd !== undefined) closeSync(rfd);
  }
  return last[0] !== 0x0a ? writeSync(fd, '\n') : 0;
}

/** At most this many buffers per writev (Linux's IOV_MAX is 1024). */
const MAX_IOV = 512;

const NEWLINE = Buffer.from('\n');

/**
 * Writes every byte of `buffers` in order, with as few writev calls as the kernel allows;
 * `progress.written` counts the bytes written, also when a later call throws.
 */
function writeAll(fd: number, buffers: readonly Buffer[], progress: { written: number }): void {
  let i = 0;
  /** Bytes of buffers[i] already written. */
  let offset = 0;
  for (;;) {
    while (i < buffers.length && buffers[i].length === offset) {
      i++;
      offset = 0;
    }
    if (i === buffers.length) return;
    const chunk = buffers.slice(i, i + MAX_IOV);
    if (offset > 0) chunk[0] = chunk[0].subarray(offset);
    let written = writevSync(fd, chunk);
    if (written === 0) throw new Error('writev wrote nothing');
    progress.written += written;
    // A short write (rare on regular files): carry on from the byte where it stopped.
    while (written > 0) {
      const left = buffers[i].length - offset;
      if (written < left) {
        offset += written;
        written = 0;
      } else {
        written -= left;
        offset = 0;
        i++;
      }
    }
  }
}

function renameQuietly(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch {
    /* a missing rotation slot */
  }
}

function chmodQuietly(dir: string): void {
  try {
    // mkdir's mode is filtered by the umask; 0700 is the contract.
    chmodSync(dir, 0o700);
  } catch {
    /* not fatal */
  }
}
