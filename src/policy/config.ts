/**
 * The configuration file (POLICY.md §2): found at `$XDG_CONFIG_HOME/tsagent/config.toml`
 * (default `~/.config/tsagent/config.toml`) or given with `--config`, read once into memory
 * with a size cap, parsed with smol-toml and validated strictly into a Config. Whatever goes
 * wrong — unreadable file, bad TOML, unknown table or key, wrong type, bad duration, size or
 * pattern, duplicate names — surfaces as one ConfigError naming file, line and key; nothing
 * else escapes parseConfig (a fuzz test holds it to that).
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { TomlError, parse } from 'smol-toml';
import type { PolicyAction } from '../agent/ports';
import { ConfigError } from '../errors';
import { describeProblem, readBounded } from './bounded-read';
import { SourceLines } from './config-lines';
import { DEFAULT_AGENT, DEFAULT_AUDIT_MAX_SIZE, DEFAULT_PROMPT } from './config-types';
import type { AgentSettings, AuditSettings, Config, KeySpec, OfferOrder, PromptMethod, RuleSpec } from './config-types';
import { compileHostPatternList } from './host-patterns';
import type { HostPatternList } from './host-patterns';
import { compilePatternList } from './patterns';
import type { PatternList } from './patterns';
import { parseDuration, parseSize } from './units';

/** A real config is a few KiB; anything past this is a mistake (or an attack), not a config. */
export const CONFIG_MAX_BYTES = 1024 * 1024;

const AGENT_KEYS = ['offer', 'max-offered', 'known-hosts', 'prompt', 'prompt-timeout', 'remember', 'lifetime'] as const;
const AUDIT_KEYS = ['enabled', 'file', 'max-size', 'list'] as const;
// Room is left for per-key settings to come (e.g. `shield`): add the name here and in KeySpec.
const KEY_KEYS = ['file', 'fingerprint', 'name', 'hosts', 'unlock-for', 'confirm'] as const;
const RULE_KEYS = ['keys', 'hosts', 'processes', 'parents', 'purposes', 'forwarded', 'action'] as const;
const TOP_KEYS = ['agent', 'audit', 'key', 'rule'] as const;
const OFFERS: readonly OfferOrder[] = ['matching-first', 'all'];
const PROMPTS: readonly PromptMethod[] = DEFAULT_PROMPT;
const ACTIONS: readonly PolicyAction[] = ['allow', 'confirm', 'deny'];
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

type Table = { readonly [k: string]: unknown };

/** `$XDG_CONFIG_HOME/tsagent/config.toml`, else `~/.config/tsagent/config.toml`. */
export function defaultConfigPath(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(home(env), '.config');
  return join(base, 'tsagent', 'config.toml');
}

/** `$XDG_STATE_HOME/tsagent/audit.jsonl`, else `~/.local/state/tsagent/audit.jsonl`. */
export function defaultAuditPath(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(home(env), '.local', 'state');
  return join(base, 'tsagent', 'audit.jsonl');
}

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || homedir();
}

/** `~` and `~/…` mean $HOME (POLICY.md §2); other paths are taken relative to the config's directory. */
export function expandPath(path: string, env: NodeJS.ProcessEnv, relativeTo: string): string {
  if (path === '~') return home(env);
  if (path.startsWith('~/')) return join(home(env), path.slice(2));
  return resolve(relativeTo, path);
}

/** What no config file means: OpenSSH's behaviour, plus the audit log at its default place. */
export function defaultConfig(env: NodeJS.ProcessEnv): Config {
  return {
    file: null,
    agent: DEFAULT_AGENT,
    audit: { enabled: true, file: defaultAuditPath(env), maxSizeBytes: DEFAULT_AUDIT_MAX_SIZE, list: true },
    keys: [],
    rules: [],
  };
}

/**
 * Loads the config. `explicit` is `--config FILE`: it must exist. Without it the default
 * path is used, and a missing file means the defaults.
 */
export function loadConfig(explicit: string | undefined, env: NodeJS.ProcessEnv): Config {
  const file = explicit === undefined ? defaultConfigPath(env) : expandPath(explicit, env, process.cwd());
  const got = readBounded(file, CONFIG_MAX_BYTES);
  if (!got.ok) {
    if (got.problem.kind === 'missing' && explicit === undefined) return defaultConfig(env);
    throw new ConfigError(describeProblem(got.problem), file, null, null);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(got.file.data);
  } catch {
    throw new ConfigError('not valid UTF-8 text', file, null, null);
  }
  return parseConfig(text, file, env);
}

/** Parses and validates `source` (the contents of `file`). Throws ConfigError only. */
export function parseConfig(source: string, file: string, env: NodeJS.ProcessEnv): Config {
  let doc: Table;
  try {
    doc = parse(source);
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
      throw new ConfigError(`invalid TOML: ${first}`, file, err.line, null);
    }
    // Anything else from the parser (e.g. a stack overflow on absurd nesting) is still bad input.
    throw new ConfigError('invalid TOML: the document cannot be parsed', file, null, null, { cause: err });
  }
  return new Validator(source, file, env).config(doc);
}

class Validator {
  private readonly lines: SourceLines;
  private readonly dir: string;

  constructor(
    source: string,
    private readonly file: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.lines = new SourceLines(source);
    this.dir = resolve(file, '..');
  }

  fail(path: string, detail: string): never {
    throw new ConfigError(detail, this.file, this.lines.lineOf(path), path);
  }

  config(doc: Table): Config {
    this.onlyKeys('', doc, TOP_KEYS);
    const defaults = defaultConfig(this.env);
    const agent = doc.agent === undefined ? defaults.agent : this.agent(this.table('agent', doc.agent));
    const audit = doc.audit === undefined ? defaults.audit : this.audit(this.table('audit', doc.audit), defaults.audit);
    const keys = doc.key === undefined ? [] : this.tables('key', doc.key).map((t, i) => this.key(t, i + 1));
    const rules = doc.rule === undefined ? [] : this.tables('rule', doc.rule).map((t, i) => this.rule(t, i + 1));
    this.unique(keys, (k) => k.name, 'name', 'key name');
    this.unique(keys, (k) => k.file, 'file', 'key file');
    this.unique(keys, (k) => k.fingerprint, 'fingerprint', 'key fingerprint');
    return { file: this.file, agent, audit, keys, rules };
  }

  private unique(keys: readonly KeySpec[], get: (k: KeySpec) => string | null, field: string, what: string): void {
    const seen = new Map<string, number>();
    for (const k of keys) {
      const v = get(k);
      if (v === null) continue;
      const first = seen.get(v);
      if (first !== undefined)
        this.fail(`key[${k.index}].${field}`, `duplicate ${what} ${JSON.stringify(v)} (also in key[${first}])`);
      seen.set(v, k.index);
    }
  }

  private onlyKeys(path: string, t: Table, allowed: readonly string[]): void {
    for (const k of Object.keys(t)) {
      if (!allowed.includes(k)) {
        const at = path === '' ? k : `${path}.${k}`;
        this.fail(at, `unknown ${path === '' ? 'table or key' : 'key'} (expected one of: ${allowed.join(', ')})`);
      }
    }
  }

  private table(path: string, v: unknown): Table {
    if (!isTable(v)) this.fail(path, `must be a table ([${path}])`);
    return v;
  }

  private tables(path: string, v: unknown): Table[] {
    if (!Array.isArray(v) || !v.every(isTable)) this.fail(path, `must be an array of tables ([[${path}]])`);
    return v;
  }

  private str(path: string, v: unknown): string {
    if (typeof v !== 'string') this.fail(path, `must be a string, not ${typeName(v)}`);
    if (/\p{Cc}/u.test(v)) this.fail(path, 'must not contain control characters');
    return v;
  }

  private bool(path: string, v: unknown): boolean {
    if (typeof v !== 'boolean') this.fail(path, `must be true or false, not ${typeName(v)}`);
    return v;
  }

  private strings(path: string, v: unknown): string[] {
    if (!Array.isArray(v)) this.fail(path, `must be an array of strings, not ${typeName(v)}`);
    return v.map((x, i) => this.str(`${path}[${i}]`, x));
  }

  private oneOf<T extends string>(path: string, v: unknown, allowed: readonly T[]): T {
    const s = this.str(path, v);
    if (!(allowed as readonly string[]).includes(s))
      this.fail(path, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    return s as T;
  }

  private duration(path: string, v: unknown): number {
    const s = this.str(path, v);
    const n = parseDuration(s);
    if (n === undefined) this.fail(path, `bad duration ${JSON.stringify(s)} (write e.g. "60s", "15m", "8h", "1h30m" or "0")`);
    return n;
  }

  private patterns(path: string, v: unknown): PatternList {
    const c = compilePatternList(this.strings(path, v));
    if (typeof c === 'string') this.fail(path, c);
    return c;
  }

  private hostPatterns(path: string, v: unknown): HostPatternList {
    const c = compileHostPatternList(this.strings(path, v));
    if (typeof c === 'string') this.fail(path, c);
    return c;
  }

  private path(path: string, v: unknown): string {
    const s = this.str(path, v);
    if (s.length === 0) this.fail(path, 'must not be empty');
    return expandPath(s, this.env, this.dir);
  }

  private agent(t: Table): AgentSettings {
    this.onlyKeys('agent', t, AGENT_KEYS);
    const d = DEFAULT_AGENT;
    let maxOffered = d.maxOffered;
    if (t['max-offered'] !== undefined) {
      const v = t['max-offered'];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
        this.fail('agent.max-offered', 'must be a whole number of at least 1');
      maxOffered = v;
    }
    let prompt = d.prompt;
    if (t.prompt !== undefined) {
      const list = this.strings('agent.prompt', t.prompt).map((_, i, a) => this.oneOf(`agent.prompt[${i}]`, a[i], PROMPTS));
      if (new Set(list).size !== list.length) this.fail('agent.prompt', 'lists a method twice');
      prompt = list;
    }
    const promptTimeoutSeconds =
      t['prompt-timeout'] === undefined ? d.promptTimeoutSeconds : this.duration('agent.prompt-timeout', t['prompt-timeout']);
    if (promptTimeoutSeconds === 0)
      this.fail('agent.prompt-timeout', 'must be longer than 0 (an approval nobody can answer is useless)');
    return {
      offer: t.offer === undefined ? d.offer : this.oneOf('agent.offer', t.offer, OFFERS),
      maxOffered,
      knownHosts:
        t['known-hosts'] === undefined
          ? d.knownHosts
          : this.strings('agent.known-hosts', t['known-hosts']).map((_, i, a) => this.path(`agent.known-hosts[${i}]`, a[i])),
      prompt,
      promptTimeoutSeconds,
      rememberSeconds: t.remember === undefined ? d.rememberSeconds : this.duration('agent.remember', t.remember),
      lifetimeSeconds: t.lifetime === undefined ? d.lifetimeSeconds : this.duration('agent.lifetime', t.lifetime),
    };
  }

  private audit(t: Table, d: AuditSettings): AuditSettings {
    this.onlyKeys('audit', t, AUDIT_KEYS);
    let maxSizeBytes = d.maxSizeBytes;
    if (t['max-size'] !== undefined) {
      const s = this.str('audit.max-size', t['max-size']);
      const n = parseSize(s);
      if (n === undefined) this.fail('audit.max-size', `bad size ${JSON.stringify(s)} (write e.g. "10MB", "512KiB")`);
      maxSizeBytes = n;
    }
    return {
      enabled: t.enabled === undefined ? d.enabled : this.bool('audit.enabled', t.enabled),
      file: t.file === undefined ? d.file : this.path('audit.file', t.file),
      maxSizeBytes,
      list: t.list === undefined ? d.list : this.bool('audit.list', t.list),
    };
  }

  private key(t: Table, index: number): KeySpec {
    const p = `key[${index}]`;
    this.onlyKeys(p, t, KEY_KEYS);
    const hasFile = t.file !== undefined;
    const hasFp = t.fingerprint !== undefined;
    if (hasFile === hasFp) this.fail(p, 'needs exactly one of "file" and "fingerprint"');
    let fingerprint: string | null = null;
    if (hasFp) {
      fingerprint = this.str(`${p}.fingerprint`, t.fingerprint);
      if (!FINGERPRINT.test(fingerprint))
        this.fail(`${p}.fingerprint`, 'must be a SHA256 fingerprint as `ssh-add -l` prints it (SHA256:…)');
      if (t['unlock-for'] !== undefined) this.fail(`${p}.unlock-for`, 'applies to keys registered with "file" only');
    }
    let name: string | null = null;
    if (t.name !== undefined) {
      name = this.str(`${p}.name`, t.name);
      if (name.length === 0 || name.length > 256) this.fail(`${p}.name`, 'must be 1 to 256 characters');
    }
    return {
      index,
      line: this.lines.lineOf(p),
      file: hasFile ? this.path(`${p}.file`, t.file) : null,
      fingerprint,
      name,
      hosts: t.hosts === undefined ? null : this.hostPatterns(`${p}.hosts`, t.hosts),
      unlockForSeconds: t['unlock-for'] === undefined ? 0 : this.duration(`${p}.unlock-for`, t['unlock-for']),
      confirm: t.confirm === undefined ? false : this.bool(`${p}.confirm`, t.confirm),
    };
  }

  private rule(t: Table, number: number): RuleSpec {
    const p = `rule[${number}]`;
    this.onlyKeys(p, t, RULE_KEYS);
    if (t.action === undefined) this.fail(p, 'needs an "action" ("allow", "confirm" or "deny")');
    const list = (k: string): PatternList | null => (t[k] === undefined ? null : this.patterns(`${p}.${k}`, t[k]));
    return {
      number,
      line: this.lines.lineOf(p),
      keys: list('keys'),
      hosts: t.hosts === undefined ? null : this.hostPatterns(`${p}.hosts`, t.hosts),
      processes: list('processes'),
      parents: list('parents'),
      purposes: list('purposes'),
      forwarded: t.forwarded === undefined ? null : this.bool(`${p}.forwarded`, t.forwarded),
      action: this.oneOf(`${p}.action`, t.action, ACTIONS),
    };
  }
}

function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  if (isTable(v)) return 'a table';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a float';
  if (typeof v === 'bigint') return 'an integer';
  return `a ${typeof v}`;
}
