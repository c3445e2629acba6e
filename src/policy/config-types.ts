/**
 * The validated configuration (POLICY.md §2). Plain data: every path expanded, every
 * duration in seconds, every pattern list compiled. `DEFAULT_AGENT`/`DEFAULT_AUDIT` give
 * what no file (or an empty one) means: OpenSSH's behaviour plus the audit log.
 */
import type { PolicyAction } from '../agent/ports';
import type { HostPatternList } from './host-patterns';
import type { PatternList } from './patterns';

export type OfferOrder = 'matching-first' | 'all';
export type PromptMethod = 'notification' | 'askpass' | 'terminal';

export interface AgentSettings {
  readonly offer: OfferOrder;
  /** null: no limit. */
  readonly maxOffered: number | null;
  /** Extra known_hosts files, `~` expanded. */
  readonly knownHosts: readonly string[];
  readonly prompt: readonly PromptMethod[];
  readonly promptTimeoutSeconds: number;
  readonly rememberSeconds: number;
  /** Default lifetime of added keys; 0 = forever. */
  readonly lifetimeSeconds: number;
}

export interface AuditSettings {
  readonly enabled: boolean;
  /** Absolute path ($XDG_STATE_HOME/tsagent/audit.jsonl unless set). */
  readonly file: string;
  readonly maxSizeBytes: number;
  readonly list: boolean;
}

/** One `[[key]]` table. Exactly one of `file` and `fingerprint` is set. */
export interface KeySpec {
  /** 1-based position among the [[key]] tables. */
  readonly index: number;
  /** Line of its `[[key]]` header (for messages). */
  readonly line: number | null;
  readonly file: string | null;
  readonly fingerprint: string | null;
  readonly name: string | null;
  readonly hosts: HostPatternList | null;
  /** Seconds to keep the decrypted private half; 0 = until the agent stops or locks. */
  readonly unlockForSeconds: number;
  readonly confirm: boolean;
}

/** One `[[rule]]` table; fields left out (null) match anything. */
export interface RuleSpec {
  /** 1-based, file order: the audit reason says `rule N`. */
  readonly number: number;
  readonly line: number | null;
  readonly keys: PatternList | null;
  readonly hosts: HostPatternList | null;
  readonly processes: PatternList | null;
  readonly parents: PatternList | null;
  readonly purposes: PatternList | null;
  readonly forwarded: boolean | null;
  readonly action: PolicyAction;
}

export interface Config {
  /** The file it came from; null when none exists (defaults). */
  readonly file: string | null;
  readonly agent: AgentSettings;
  readonly audit: AuditSettings;
  readonly keys: readonly KeySpec[];
  readonly rules: readonly RuleSpec[];
}

export const DEFAULT_PROMPT: readonly PromptMethod[] = ['notification', 'askpass', 'terminal'];

export const DEFAULT_AGENT: AgentSettings = {
  offer: 'matching-first',
  maxOffered: null,
  knownHosts: [],
  prompt: DEFAULT_PROMPT,
  promptTimeoutSeconds: 60,
  rememberSeconds: 15 * 60,
  lifetimeSeconds: 0,
};

export const DEFAULT_AUDIT_MAX_SIZE = 10_000_000;
