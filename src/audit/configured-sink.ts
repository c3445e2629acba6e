/**
 * The daemon's AuditSink as the config's `[audit]` table describes it (POLICY.md §2, §6):
 * `enabled`, `file`, `max-size`, `list`. The keyring holds this one object for its whole
 * life; `tsagent reload` swaps the settings under it (a new file or size closes the old
 * writer and starts a new one; `enabled = false` drops records; `list = false` drops list
 * records). No file is opened until a record is written, so starting the agent costs no I/O.
 */
import type { AuditRecord, AuditSink } from '../agent/ports';
import { AuditFileSink } from './audit-file';

export interface AuditSettingsLike {
  readonly enabled: boolean;
  readonly file: string;
  readonly maxSizeBytes: number;
  readonly list: boolean;
}

export class ConfiguredAuditSink implements AuditSink {
  private file: AuditFileSink | undefined;
  private settings: AuditSettingsLike;
  private closed = false;

  constructor(
    settings: AuditSettingsLike,
    private readonly warn: (message: string) => void = () => undefined,
  ) {
    this.settings = settings;
    this.file = this.open(settings);
  }

  /** The file records go to now; undefined when disabled. */
  get path(): string | undefined {
    return this.file?.path;
  }

  record(r: AuditRecord): void {
    if (this.file === undefined) return;
    if (r.event === 'list' && !this.settings.list) return;
    this.file.record(r);
  }

  accepts(event: AuditRecord['event']): boolean {
    return this.file !== undefined && (event !== 'list' || this.settings.list);
  }

  flush(): void {
    this.file?.flush();
  }

  afterWrite(then: () => void): boolean {
    return this.file?.afterWrite(then) ?? false;
  }

  /** Takes new settings (reload); records queued so far go to the old file. */
  swap(next: AuditSettingsLike): void {
    if (this.closed) return;
    const prev = this.settings;
    this.settings = next;
    const sameFile = prev.enabled === next.enabled && prev.file === next.file && prev.maxSizeBytes === next.maxSizeBytes;
    if (sameFile) return;
    this.file?.close();
    this.file = this.open(next);
  }

  /** Writes what is queued and closes the file; later records are dropped. */
  close(): void {
    this.closed = true;
    this.file?.close();
    this.file = undefined;
  }

  private open(s: AuditSettingsLike): AuditFileSink | undefined {
    return s.enabled ? new AuditFileSink({ path: s.file, maxSize: s.maxSizeBytes, warn: this.warn }) : undefined;
  }
}

/** A `config` record (POLICY.md §6): the configuration loaded, reloaded, or refused. */
export function configRecord(decision: 'allow' | 'fail', reason: string): AuditRecord {
  return { time: new Date().toISOString(), event: 'config', decision, reason, process: null, destination: null };
}
