/**
 * One audit record as one JSON line (POLICY.md §6). Only the contract's fields are copied,
 * each checked for its type, so nothing else a caller attaches (a Buffer, a key object)
 * can reach the file; a second fence redacts anything shaped like key material. Field
 * order is §6's: time, event, decision, reason, key|keys, process, destination, purpose, ms.
 */
import type { AuditRecord } from '../agent/ports';
import type { Destination, ProcessInfo } from '../context/types';

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function strings(v: unknown): string[] | null {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : null;
}

function processFields(p: ProcessInfo): object {
  return {
    pid: num(p.pid),
    uid: num(p.uid),
    exe: str(p.exe),
    argv: strings(p.argv),
    unit: str(p.unit),
    parents: strings(p.parents),
  };
}

function destinationFields(d: Destination): object {
  return {
    host: str(d.host),
    names: strings(d.names) ?? [],
    port: num(d.port),
    hostKey: str(d.hostKey),
    user: str(d.user),
    forwarded: d.forwarded === true,
    via: strings(d.via) ?? [],
  };
}

/**
 * PEM blocks, OpenSSH private key containers ("openssh-key-v1" raw, base64 or hex) and long
 * base64/hex runs (a private key or a raw secret): none belongs in a record. Peer-supplied
 * text (argv, comments) is where one could slip in. The check is a linear scan; the
 * (slower) replacement only runs on a line that has one.
 */
const LONG_RUN = 128;
const MARKERS = ['-----BEGIN', 'openssh-key-v1', 'b3BlbnNzaC1rZXktdjE', '6f70656e7373682d6b65792d7631'];
const RUN = '[A-Za-z0-9+/=_-]';
const SECRET_SHAPES = new RegExp(
  [
    '-----BEGIN[^-]*-----[\\s\\S]*?(?:-----END[^-]*-----|$)',
    `(?<!${RUN})${RUN}{${LONG_RUN},}`,
    `${RUN}*(?:openssh-key-v1|b3BlbnNzaC1rZXktdjE|6f70656e7373682d6b65792d7631)${RUN}*`,
  ].join('|'),
  'g',
);

export const REDACTED = '[redacted]';

function isRunChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2b ||
    c === 0x2f ||
    c === 0x3d ||
    c === 0x5f ||
    c === 0x2d
  );
}

function looksSecret(line: string): boolean {
  let run = 0;
  for (let i = 0; i < line.length; i++) {
    if (isRunChar(line.charCodeAt(i))) {
      if (++run >= LONG_RUN) return true;
    } else {
      run = 0;
    }
  }
  for (const m of MARKERS) if (line.includes(m)) return true;
  return false;
}

export function redactSecrets(line: string): string {
  return looksSecret(line) ? line.replace(SECRET_SHAPES, REDACTED) : line;
}

/**
 * A record's process and destination are the same objects for every request of a
 * connection (and its key view for every use of a key): their checked, redacted JSON is
 * made once per object and reused, so a record costs little more than its own few fields.
 */
const fragments = new WeakMap<object, string>();

function fragment<T extends object>(v: T | null | undefined, fields: (v: T) => object): string {
  if (v === null || v === undefined || typeof v !== 'object') return 'null';
  let f = fragments.get(v);
  if (f === undefined) {
    f = redactSecrets(JSON.stringify(fields(v)));
    fragments.set(v, f);
  }
  return f;
}

type KeyFields = NonNullable<AuditRecord['key']>;

function keyFields(k: KeyFields): object {
  return { fingerprint: str(k.fingerprint), comment: str(k.comment), name: str(k.name), type: str(k.type) };
}

/**
 * The checked JSON of the short strings every record repeats (event, decision, reason,
 * purpose): a handful of distinct values, so each is made once. Bounded, since a reason can
 * name a rule or an error.
 */
const texts = new Map<string, string>();
const TEXTS_LIMIT = 512;

function fingerprintList(keys: readonly unknown[]): object {
  return strings(keys) ?? [];
}

function text(v: unknown): string {
  if (typeof v !== 'string') return 'null';
  let t = texts.get(v);
  if (t === undefined) {
    t = redactSecrets(JSON.stringify(v));
    if (texts.size >= TEXTS_LIMIT) texts.clear();
    texts.set(v, t);
  }
  return t;
}

/** The agent's own timestamp (Date#toISOString); anything else goes through text(). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function time(v: unknown): string {
  return typeof v === 'string' && ISO_TIME.test(v) ? `"${v}"` : text(v);
}

/**
 * A list's fingerprints are the one part of a record that can be large (50 KB for 1000
 * keys) and they repeat on every list: past this size the part is kept encoded, once per
 * offered array, and a batch hands it to writev as it is instead of copying it into a
 * string and encoding it again.
 */
const LARGE_PART = 1024;
const partBytes = new WeakMap<object, Buffer>();

/** One record's line; a large part, when it has one, sits between `head` and `tail`. */
interface RecordLine {
  readonly head: string;
  readonly large: { readonly text: string; readonly bytes: Buffer } | undefined;
  readonly tail: string;
}

function recordLine(r: AuditRecord): RecordLine {
  let line = `{"time":${time(r.time)},"event":${text(r.event)},"decision":${text(r.decision)},"reason":${text(r.reason)}`;
  if (r.key !== undefined && r.key !== null) line += `,"key":${fragment(r.key, keyFields)}`;
  let head = '';
  let large: RecordLine['large'];
  if (r.keys !== undefined) {
    const keys = fragment(r.keys, fingerprintList);
    if (keys.length < LARGE_PART) {
      line += `,"keys":${keys}`;
    } else {
      head = `${line},"keys":`;
      line = '';
      let bytes = partBytes.get(r.keys);
      if (bytes === undefined) {
        bytes = Buffer.from(keys, 'utf8');
        partBytes.set(r.keys, bytes);
      }
      large = { text: keys, bytes };
    }
  }
  line += `,"process":${fragment(r.process, processFields)},"destination":${fragment(r.destination, destinationFields)}`;
  if (r.purpose !== undefined) line += `,"purpose":${text(r.purpose)}`;
  if (r.ms !== undefined) {
    const ms = num(r.ms);
    line += `,"ms":${ms === null ? 'null' : String(Math.round(ms * 1000) / 1000)}`;
  }
  return large === undefined ? { head: `${line}}\n`, large, tail: '' } : { head, large, tail: `${line}}\n` };
}

/** The record's JSON line, newline-terminated. */
export function serializeRecord(r: AuditRecord): string {
  const l = recordLine(r);
  return l.large === undefined ? l.head : l.head + l.large.text + l.tail;
}

/**
 * Records encoded the moment they are made, into one reused chunk, so nothing of a record
 * outlives the call that made it (records held for a batch would survive scavenges and be
 * copied, the garbage collector's most expensive case). Parts over LARGE_PART are referenced
 * as they are. writeTo() hands the buffers to one synchronous writev and empties the encoder.
 */
export class RecordEncoder {
  private chunk: Buffer;
  /** Where the text not yet cut into `parts` begins in `chunk`. */
  private start = 0;
  private used = 0;
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Records added since the last writeTo(). */
  count = 0;

  constructor(private readonly chunkSize = 64 * 1024) {
    this.chunk = Buffer.allocUnsafe(chunkSize);
  }

  /** Bytes added since the last writeTo(). */
  get length(): number {
    return this.partBytes + this.used - this.start;
  }

  /** Encodes one record; one that cannot be serialised is left out, never thrown. */
  add(r: AuditRecord): void {
    let l: RecordLine;
    try {
      l = recordLine(r);
    } catch {
      return;
    }
    this.text(l.head);
    if (l.large !== undefined) {
      this.cut();
      this.push(l.large.bytes);
      this.text(l.tail);
    }
    this.count++;
  }

  /**
   * Hands the encoded records, in order, to `write` (which must be done with them when it
   * returns: the chunk is reused next) and empties the encoder, whatever `write` does.
   */
  writeTo(write: (buffers: readonly Buffer[], length: number) => void): void {
    this.cut();
    const parts = this.parts;
    const length = this.partBytes;
    this.parts = [];
    this.partBytes = 0;
    this.count = 0;
    try {
      write(parts, length);
    } finally {
      this.start = 0;
      this.used = 0;
    }
  }

  private text(s: string): void {
    if (s === '') return;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    if (this.used + s.length * 3 > this.chunk.length) {
      this.cut();
      this.chunk = Buffer.allocUnsafe(Math.max(this.chunkSize, s.length * 3));
      this.start = 0;
      this.used = 0;
    }
    this.used += this.chunk.write(s, this.used, 'utf8');
  }

  private cut(): void {
    if (this.used === this.start) return;
    this.push(this.chunk.subarray(this.start, this.used));
    this.start = this.used;
  }

  private push(b: Buffer): void {
    this.parts.push(b);
    this.partBytes += b.length;
  }
}
