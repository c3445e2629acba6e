/**
 * The words of an approval prompt (POLICY.md §4): the program, the destination, the purpose,
 * the key, in that order, so the user reads who asks before what is asked for.
 *
 * Everything that comes from the peer or from a key's owner (argv, comments, names, host
 * names) is data: control characters, backslashes and bidirectional overrides are escaped, so
 * a crafted argv cannot fake a line ("Destination: trusted.example") or reorder the text. Each
 * piece is capped, and the whole prompt is kept under 1023 bytes, as OpenSSH caps the prompt
 * it hands to askpass. The text goes into argv or a D-Bus string, never through a shell.
 */
import { basename } from 'node:path';
import type { Destination, ProcessInfo, Purpose } from '../context/types';
import type { SignQuestion } from '../agent/ports';

/** OpenSSH builds askpass prompts in a 1024-byte buffer: at most 1023 bytes of text. */
export const MAX_PROMPT_BYTES = 1023;
/** One piece of peer text (an argv string, a comment, a host name). */
const MAX_PIECE_CHARS = 120;
/** All of argv together. */
const MAX_ARGV_CHARS = 300;
const ELLIPSIS = '…';

/**
 * Peer text shown as data: C0/C1 controls and DEL as \xNN, a backslash as \\, and Unicode
 * format characters that reorder or hide text (bidi overrides, zero-width marks, line and
 * paragraph separators) as \u{XXXX}. Capped at `maxChars` characters (an ellipsis marks the cut).
 */
export function escapePeerText(text: string, maxChars = MAX_PIECE_CHARS): string {
  let out = '';
  let count = 0;
  for (const ch of text) {
    if (count >= maxChars) return out + ELLIPSIS;
    out += escapeChar(ch);
    count++;
  }
  return out;
}

function escapeChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (ch === '\\') return '\\\\';
  if (isHiddenFormatChar(cp)) return `\\u{${cp.toString(16)}}`;
  return ch;
}

/** Bidi embeddings/overrides/isolates, zero-width and BOM, line/paragraph separators. */
function isHiddenFormatChar(cp: number): boolean {
  return (
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x2028 && cp <= 0x202e) ||
    (cp >= 0x2060 && cp <= 0x2069) ||
    cp === 0xfeff ||
    cp === 0x061c
  );
}

/** "ssh (ssh -p 2222 git@example.com)"; "unknown program" when /proc told us nothing. */
export function describeProgram(peer: ProcessInfo | null): string {
  const exe = peer?.exe ?? null;
  const argv = peer?.argv ?? null;
  const name =
    exe !== null
      ? escapePeerText(basename(exe))
      : argv !== null && argv.length > 0
        ? escapePeerText(argv[0] ?? '')
        : 'unknown program';
  const pid = peer?.pid ?? null;
  const args = argv !== null && argv.length > 0 ? ` (${joinArgv(argv)})` : '';
  return `${name}${args}${pid !== null ? ` pid ${pid}` : ''}`;
}

/**
 * argv joined by spaces, escaped. Too long, it keeps its head (the program and options) and
 * its tail (for ssh, the destination and command), with an ellipsis for the middle.
 */
function joinArgv(argv: readonly string[]): string {
  const pieces = argv.map((a) => escapePeerText(a));
  const all = pieces.join(' ');
  if (all.length <= MAX_ARGV_CHARS) return all;
  const half = Math.floor(MAX_ARGV_CHARS / 2);
  let head = (pieces[0] ?? '').slice(0, half);
  let next = 1;
  for (; next < pieces.length; next++) {
    const piece = pieces[next] ?? '';
    if (head.length + 1 + piece.length > half) break;
    head += ` ${piece}`;
  }
  let tail = '';
  for (let i = pieces.length - 1; i >= next; i--) {
    const piece = pieces[i] ?? '';
    const longer = tail === '' ? piece : `${piece} ${tail}`;
    if (longer.length > half) break;
    tail = longer;
  }
  return tail === '' ? `${head} ${ELLIPSIS}` : `${head} ${ELLIPSIS} ${tail}`;
}

/**
 * "git@github.com", "git@github.com port 2222, forwarded via bastion", or, when no known_hosts
 * line names the key, "user git on the host with key SHA256:…"; "no destination (connection
 * not bound to a host)" for an unbound connection (ssh-keygen -Y sign, libraries, old clients).
 */
export function describeDestination(destination: Destination | null): string {
  if (destination === null) return 'no destination (connection not bound to a host)';
  const user = destination.user !== null ? escapePeerText(destination.user) : null;
  let out: string;
  if (destination.host !== null) out = `${user !== null ? `${user}@` : ''}${escapePeerText(destination.host)}`;
  else out = `${user !== null ? `user ${user} on ` : ''}the host with key ${destination.hostKey}`;
  if (destination.port !== null) out += ` port ${destination.port}`;
  if (destination.forwarded) {
    const via = destination.via.length > 0 ? destination.via.map((v) => escapePeerText(v)).join(', ') : 'an unknown host';
    out += `, forwarded via ${via}`;
  }
  return out;
}

/** "log in", "sign with namespace git", "sign other data". */
export function describePurpose(purpose: Purpose): string {
  if (purpose === 'login') return 'log in';
  if (purpose.startsWith('sign:')) return `sign with namespace ${escapePeerText(purpose.slice('sign:'.length))}`;
  return 'sign other data';
}

/** "github SHA256:…" (the config's name, else the key's comment). */
export function describeKey(key: SignQuestion['key']): string {
  const label = key.name ?? key.comment;
  return label !== '' ? `${escapePeerText(label)} ${key.fingerprint}` : key.fingerprint;
}

export interface PromptText {
  /** A short first line, e.g. for a notification's summary. */
  readonly summary: string;
  /** The four facts, one per line, in POLICY.md §4 order. */
  readonly lines: readonly string[];
  /** summary + lines (+ how to answer), capped at MAX_PROMPT_BYTES: askpass's argument. */
  readonly text: string;
}

export function promptText(q: SignQuestion, id: string): PromptText {
  const summary = `Allow ${describePurpose(q.purpose)} with an SSH key? (approval ${id})`;
  const lines = [
    `Program: ${describeProgram(q.process)}`,
    `Destination: ${describeDestination(q.destination)}`,
    `Purpose: ${describePurpose(q.purpose)}`,
    `Key: ${describeKey(q.key)}`,
  ];
  return { summary, lines, text: capBytes([summary, ...lines].join('\n'), MAX_PROMPT_BYTES) };
}

/** Cuts `text` to at most `max` UTF-8 bytes on a character boundary, ending in an ellipsis. */
export function capBytes(text: string, max: number): string {
  if (Buffer.byteLength(text, 'utf8') <= max) return text;
  const room = max - Buffer.byteLength(ELLIPSIS, 'utf8');
  let out = '';
  let used = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > room) break;
    out += ch;
    used += n;
  }
  return out + ELLIPSIS;
}
