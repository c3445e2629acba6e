/** Reading and writing a key algorithm's field layout (algorithms.ts) with the wire primitives. */
import type { WireField } from './algorithms';
import type { SshReader, SshWriter } from './wire';

/** Reads fields in layout order into `{ name: value }` (values are views into the input). */
export function readFields(r: SshReader, fields: readonly WireField[]): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {};
  for (const f of fields) out[f.name] = f.encoding === 'text' ? r.text() : f.encoding === 'mpint' ? r.mpint() : r.string();
  return out;
}

/** Writes fields in layout order from an object holding them by name. */
export function writeFields(w: SshWriter, fields: readonly WireField[], values: object): void {
  const v = values as Readonly<Record<string, Buffer | string>>;
  for (const f of fields) {
    const value = v[f.name];
    if (f.encoding === 'mpint') w.mpint(value as Buffer);
    else w.string(value);
  }
}
