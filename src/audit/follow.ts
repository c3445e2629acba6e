/**
 * `tsagent log -f`: new records as they are appended, by bounded polling of the file (fs.watch
 * misses writes on some filesystems and loses the file across rotation). A rotation (the
 * path names a new inode) is followed: the rest of the old file is read first, then the new
 * one from its start. A partial last line waits for its newline.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { AuditRecord } from '../agent/ports';
import { parseRecordLine } from './query';

export interface FollowOptions {
  /** Default 250 ms. */
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

export class Tail {
  private fd: number | undefined;
  private ino = -1;
  private offset = 0;
  private pending = '';
  private decoder = new StringDecoder('utf8');

  constructor(private readonly path: string) {}

  /** Starts at the current end of the file (records already there were shown by the caller). */
  openAtEnd(): void {
    this.open(true);
  }

  /**
   * Opens the file at its start and returns its complete lines as they are now; following
   * then continues from exactly there, so a record appended meanwhile is neither lost nor
   * shown twice. Undefined when the file cannot be opened (following opens it when it appears).
   */
  openAndReadExisting(): string | undefined {
    this.open(false);
    if (this.fd === undefined) return undefined;
    let text = '';
    this.drainLines((line) => {
      text += `${line}\n`;
    });
    return text;
  }

  private open(atEnd: boolean): void {
    try {
      const fd = openSync(this.path, 'r');
      const st = fstatSync(fd);
      this.fd = fd;
      this.ino = st.ino;
      this.offset = atEnd ? st.size : 0;
      this.pending = '';
      this.decoder = new StringDecoder('utf8');
    } catch {
      this.fd = undefined;
    }
  }

  private close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private drain(emit: (r: AuditRecord) => void): void {
    this.drainLines((line) => {
      const r = parseRecordLine(line);
      if (r !== undefined) emit(r);
    });
  }

  private drainLines(emit: (line: string) => void): void {
    if (this.fd === undefined) return;
    const st = fstatSync(this.fd);
    if (st.size < this.offset) {
      // Truncated in place: start again from its beginning.
      this.offset = 0;
      this.pending = '';
      this.decoder = new StringDecoder('utf8');
    }
    const buf = Buffer.allocUnsafe(64 * 1024);
    for (;;) {
      const n = readSync(this.fd, buf, 0, buf.length, this.offset);
      if (n <= 0) break;
      this.offset += n;
      const text = this.pending + this.decoder.write(buf.subarray(0, n));
      const lines = text.split('\n');
      this.pending = lines.pop() ?? '';
      for (const line of lines) emit(line);
    }
  }

  poll(emit: (r: AuditRecord) => void): void {
    try {
      this.drain(emit);
      const st = statSync(this.path, { throwIfNoEntry: false });
      if (st !== undefined && st.ino !== this.ino) {
        this.close();
        this.open(false);
        this.drain(emit);
      }
    } catch {
      this.close();
    }
  }

  stop(): void {
    this.close();
  }
}

/**
 * Calls `emit` for every record appended after the call (or, with `from`, after what that
 * tail has read); resolves when `signal` aborts.
 */
export function followAudit(path: string, emit: (r: AuditRecord) => void, opts: FollowOptions = {}, from?: Tail): Promise<void> {
  const tail = from ?? new Tail(path);
  if (from === undefined) tail.openAtEnd();
  return new Promise((resolve) => {
    const timer = setInterval(() => tail.poll(emit), opts.intervalMs ?? 250);
    const stop = (): void => {
      clearInterval(timer);
      tail.stop();
      resolve();
    };
    if (opts.signal?.aborted === true) stop();
    else opts.signal?.addEventListener('abort', stop, { once: true });
  });
}
