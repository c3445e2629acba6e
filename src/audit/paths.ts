/** Where the audit log lives (POLICY.md §6): $XDG_STATE_HOME/tsagent/audit.jsonl, ~/.local/state when unset. */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

export const AUDIT_FILE_NAME = 'audit.jsonl';
/** POLICY.md §2 `[audit] max-size` default. */
export const DEFAULT_AUDIT_MAX_SIZE = 10 * 1024 * 1024;
/** Rotated files audit.jsonl.1 … .5. */
export const AUDIT_ROTATIONS = 5;

export function defaultAuditPath(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir();
  const state = env.XDG_STATE_HOME;
  // The XDG spec: a relative value is invalid and is ignored.
  const base = state !== undefined && isAbsolute(state) ? state : join(home, '.local', 'state');
  return join(base, 'tsagent', AUDIT_FILE_NAME);
}

/** Oldest first: audit.jsonl.5 … audit.jsonl.1, audit.jsonl. */
export function auditFilesOldestFirst(path: string, rotations = AUDIT_ROTATIONS): string[] {
  const out: string[] = [];
  for (let i = rotations; i >= 1; i--) out.push(`${path}.${i}`);
  out.push(path);
  return out;
}
