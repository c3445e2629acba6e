/**
 * The PolicyPort of POLICY.md §2: which keys a list shows on a connection, and what a sign
 * request gets. Built once per configuration (patterns precompiled at load); the per-request
 * paths walk small arrays and return preallocated decisions, since decideSign runs on every
 * signature.
 *
 * Order of judgement for a signature:
 * 1. a key with `hosts` signs a login only for a matching destination; a login on an unbound
 *    connection is refused for it (reason "hosts");
 * 2. the first `[[rule]]` whose every given field matches decides (reason "rule N");
 *    `deny` and `confirm` stand as they are;
 * 3. an `allow` (from a rule, or no rule matching: "default") becomes `confirm` for a key
 *    that asks for confirmation (`ssh-add -c`, or `confirm = true` in its [[key]] table):
 *    such keys are always confirmed unless a rule denies (reason "key confirm").
 */
import type { KeyView, PolicyDecision, PolicyPort, SignQuestion } from '../agent/ports';
import type { Destination } from '../context/types';
import type { AgentSettings, Config, KeySpec, RuleSpec } from './config-types';
import { matchHosts } from './host-patterns';
import type { HostKeyOracle, HostPatternList } from './host-patterns';
import { matchList, matchListAny, matchOne } from './patterns';
import type { PatternList } from './patterns';

/** The settings a [[key]] table gives a key, found by its fingerprint. */
export interface KeySettings {
  readonly name: string | null;
  readonly hosts: HostPatternList | null;
  readonly confirm: boolean;
}

const DENY_HOSTS: PolicyDecision = Object.freeze({ action: 'deny', reason: 'hosts' });
const ALLOW_DEFAULT: PolicyDecision = Object.freeze({ action: 'allow', reason: 'default' });
const CONFIRM_KEY: PolicyDecision = Object.freeze({ action: 'confirm', reason: 'key confirm' });

export interface RulePolicyOptions {
  readonly agent: AgentSettings;
  readonly rules: readonly RuleSpec[];
  /**
   * Settings per key fingerprint: `[[key]] fingerprint=` tables, and `[[key]] file=` tables
   * once their public half is known (see keySettingsByFingerprint).
   */
  readonly keySettings: ReadonlyMap<string, KeySettings>;
  /** name -> keys lookups in known_hosts, for literal host names; without it only Destination.names count. */
  readonly hostKeys?: HostKeyOracle;
}

/**
 * Builds the fingerprint -> settings map from a config and the fingerprints of its
 * registered key files (`fileFingerprints`: file path -> fingerprint, for the files that loaded).
 */
export function keySettingsByFingerprint(
  keys: readonly KeySpec[],
  fileFingerprints: ReadonlyMap<string, string>,
): Map<string, KeySettings> {
  const m = new Map<string, KeySettings>();
  for (const k of keys) {
    const fp = k.fingerprint ?? (k.file === null ? undefined : fileFingerprints.get(k.file));
    if (fp !== undefined) m.set(fp, { name: k.name, hosts: k.hosts, confirm: k.confirm });
  }
  return m;
}

/**
 * Every literal name in the config's `hosts` lists (`name`, or `[name]:port`), negated or not:
 * the candidates the known_hosts namer (context/namer.ts) tests hashed lines against, so a
 * name the config speaks of is proven for the bound key whenever a line says so (POLICY.md §1).
 */
export function literalHostNames(config: Pick<Config, 'keys' | 'rules'>): string[] {
  const out = new Set<string>();
  const add = (list: HostPatternList | null): void => {
    for (const i of list?.items ?? []) if (!i.wildcard) out.add(i.port === null ? i.host : `[${i.host}]:${i.port}`);
  };
  for (const k of config.keys) add(k.hosts);
  for (const r of config.rules) add(r.hosts);
  return [...out];
}

function sameKeys(a: readonly KeyView[], b: readonly KeyView[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class RulePolicy implements PolicyPort {
  private readonly decisions: readonly PolicyDecision[];
  /** The last selection for each destination, by the offered array it was made from. */
  private readonly selectionFor = new WeakMap<Destination, { keys: readonly KeyView[]; shown: readonly KeyView[] }>();
  /** The last selection made from each offered array (see stable()). */
  private readonly lastSelection = new WeakMap<readonly KeyView[], readonly KeyView[]>();
  /** No key has `hosts` and no cap: every list is shown as it is (the keyring keeps its cached reply). */
  private readonly listAsIs: boolean;

  constructor(private readonly options: RulePolicyOptions) {
    this.decisions = options.rules.map((r) => Object.freeze({ action: r.action, reason: `rule ${r.number}` }));
    this.listAsIs = options.agent.maxOffered === null && [...options.keySettings.values()].every((k) => k.hosts === null);
  }

  static fromConfig(config: Config, fileFingerprints: ReadonlyMap<string, string>, hostKeys?: HostKeyOracle): RulePolicy {
    return new RulePolicy({
      agent: config.agent,
      rules: config.rules,
      keySettings: keySettingsByFingerprint(config.keys, fileFingerprints),
      ...(hostKeys === undefined ? {} : { hostKeys }),
    });
  }

  /** POLICY.md §2: hosts filter, `offer` order and `max-offered` on bound connections; everything when unbound. */
  selectForList(keys: readonly KeyView[], destination: Destination | null): readonly KeyView[] {
    if (destination === null || this.listAsIs) return keys;
    // A connection lists again and again with one destination object, and equal destinations
    // are one object (context/destination.ts): the same keys get the same selection. The
    // destination's names come from known_hosts as it is at the bind; a change that alters
    // them makes another destination. A host key oracle answers from known_hosts as it is
    // now, beyond the names: with one, every list is selected afresh.
    if (this.options.hostKeys !== undefined) return this.select(keys, destination);
    const last = this.selectionFor.get(destination);
    if (last?.keys === keys) return last.shown;
    const shown = this.select(keys, destination);
    this.selectionFor.set(destination, { keys, shown });
    return shown;
  }

  private select(keys: readonly KeyView[], destination: Destination): readonly KeyView[] {
    const { offer, maxOffered } = this.options.agent;
    const matching: KeyView[] = [];
    const plain: KeyView[] = offer === 'all' ? matching : [];
    for (const k of keys) {
      const hosts = this.options.keySettings.get(k.fingerprint)?.hosts ?? null;
      if (hosts === null) plain.push(k);
      else if (matchHosts(hosts, destination, this.options.hostKeys)) matching.push(k);
    }
    const ordered = plain === matching ? matching : matching.concat(plain);
    if (maxOffered !== null && ordered.length > maxOffered) ordered.length = maxOffered;
    return this.stable(keys, ordered);
  }

  /**
   * `ordered` as an array already handed out when one holds the same keys: the offered array
   * itself, or the last selection made from it. The encoded reply and the audit record's
   * fingerprints are cached by array identity, so a fresh but equal array would encode 1000
   * identities again on every list of every bound connection.
   */
  private stable(keys: readonly KeyView[], ordered: KeyView[]): readonly KeyView[] {
    if (sameKeys(ordered, keys)) return keys;
    const last = this.lastSelection.get(keys);
    if (last !== undefined && sameKeys(ordered, last)) return last;
    this.lastSelection.set(keys, ordered);
    return ordered;
  }

  decideSign(q: SignQuestion): PolicyDecision {
    const settings = this.options.keySettings.get(q.key.fingerprint);
    if (settings?.hosts != null && q.purpose === 'login' && !matchHosts(settings.hosts, q.destination, this.options.hostKeys)) {
      return DENY_HOSTS;
    }
    const confirm = q.key.confirm || settings?.confirm === true;
    const rules = this.options.rules;
    for (let i = 0; i < rules.length; i++) {
      if (!this.ruleMatches(rules[i], q, settings?.name ?? null)) continue;
      const d = this.decisions[i];
      return d.action === 'allow' && confirm ? CONFIRM_KEY : d;
    }
    return confirm ? CONFIRM_KEY : ALLOW_DEFAULT;
  }

  private ruleMatches(r: RuleSpec, q: SignQuestion, configName: string | null): boolean {
    if (r.keys !== null && !matchListAny(r.keys, q.key.fingerprint, q.key.name ?? configName, q.key.comment)) return false;
    if (r.purposes !== null && !matchList(r.purposes, q.purpose)) return false;
    if (r.forwarded !== null && (q.destination?.forwarded ?? false) !== r.forwarded) return false;
    if (r.processes !== null && !matchExe(r.processes, q.process?.exe ?? null)) return false;
    if (r.parents !== null && !matchParents(r.parents, q.process?.parents ?? null)) return false;
    if (r.hosts !== null && !matchHosts(r.hosts, q.destination, this.options.hostKeys)) return false;
    return true;
  }
}

function basename(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut < 0 ? path : path.slice(cut + 1);
}

/** A pattern with a `/` is matched against the whole exe path, any other against its basename. */
export function matchExe(list: PatternList, exe: string | null): boolean {
  if (exe === null) return false;
  const base = basename(exe);
  let found = false;
  for (const item of list.items) {
    if (matchOne(item, item.text.includes('/') ? exe : base)) {
      if (item.negated) return false;
      found = true;
    }
  }
  return found;
}

/** True when any of the (up to 4) parents matches the list. Unknown parents match nothing. */
function matchParents(list: PatternList, parents: readonly string[] | null): boolean {
  if (parents === null) return false;
  for (const p of parents) if (matchExe(list, p)) return true;
  return false;
}
