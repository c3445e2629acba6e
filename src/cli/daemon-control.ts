/**
 * The daemon's side of the control commands (ControlTarget, POLICY.md §5) and its current
 * policy state: the config in force and the registered keys it names. `reload` builds the
 * new state completely before swapping it in, so an invalid file leaves everything as it
 * was (the command exits 1 with the ConfigError's message).
 *
 * Until the decision gate consults this state, it reports the keyring's held keys and the
 * registered keys side by side; the integration replaces keys() with the gate's view.
 */
import type { Logger } from 'pino';
import type { Keyring } from '../agent/keyring';
import { fingerprint } from '../keys/fingerprint';
import { loadConfig } from '../policy/config';
import type { Config } from '../policy/config-types';
import { RegisteredKeys } from '../policy/registered-keys';
import { RulePolicy } from '../policy/rules';
import type { KeyJson, StatusJson } from '../protocol/control';
import type { ControlTarget } from '../server/control-socket';

export interface PolicyState {
  readonly config: Config;
  readonly registered: RegisteredKeys;
  readonly policy: RulePolicy;
  /** One line per key file that could not be registered. */
  readonly warnings: readonly string[];
}

/** Loads the config (throws ConfigError) and registers its key files (bad files become warnings). */
export function loadPolicyState(configPath: string | undefined, env: NodeJS.ProcessEnv): PolicyState {
  const config = loadConfig(configPath, env);
  return policyStateFrom(config);
}

export function policyStateFrom(config: Config): PolicyState {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const { keys, errors } = RegisteredKeys.load(config.keys, uid === undefined ? {} : { uid });
  return { config, registered: keys, policy: RulePolicy.fromConfig(config, keys.fileFingerprints()), warnings: errors.map((e) => e.message) };
}

export interface DaemonControlOptions {
  readonly keyring: Keyring;
  readonly socket: string;
  readonly control: string;
  /** `--config FILE`, or undefined for the default path. */
  readonly configPath: string | undefined;
  readonly env: NodeJS.ProcessEnv;
  readonly initial: PolicyState;
  readonly logger?: Logger;
  /** Told of every successful reload (the gate swaps its PolicyPort). */
  readonly onReload?: (state: PolicyState, previous: PolicyState) => void;
}

export class DaemonControl implements ControlTarget {
  private current: PolicyState;
  private readonly startedAt = Date.now();

  constructor(private readonly options: DaemonControlOptions) {
    this.current = options.initial;
  }

  get state(): PolicyState {
    return this.current;
  }

  status(): StatusJson {
    return {
      pid: process.pid,
      socket: this.options.socket,
      control: this.options.control,
      config: this.current.config.file,
      keys: { held: this.options.keyring.size, registered: this.current.registered.list().length },
      locked: this.options.keyring.locked,
      uptimeSeconds: Math.floor((Date.now() - this.startedAt) / 1000),
    };
  }

  keys(): readonly KeyJson[] {
    const reg = this.current.registered;
    const out: KeyJson[] = reg.list().map((k) => ({
      name: k.name,
      comment: k.comment,
      fingerprint: k.fingerprint,
      type: k.type,
      source: 'config',
      loaded: reg.isLoaded(k.name),
      hosts: k.spec.hosts === null ? null : [...k.spec.hosts.source],
      confirm: k.spec.confirm,
      lifetimeLeft: reg.lifetimeLeft(k.name),
      lastUsed: null,
    }));
    const byFp = new Map(this.current.config.keys.filter((k) => k.fingerprint !== null).map((k) => [k.fingerprint!, k]));
    for (const v of this.options.keyring.keyViews()) {
      const fp = v.fingerprint.startsWith('SHA256:') ? v.fingerprint : fingerprint(v.blob);
      if (reg.byFingerprint(fp) !== undefined) continue;
      const spec = byFp.get(fp);
      out.push({
        name: v.name ?? spec?.name ?? null,
        comment: v.comment,
        fingerprint: fp,
        type: v.type,
        source: 'added',
        loaded: true,
        hosts: spec?.hosts == null ? null : [...spec.hosts.source],
        confirm: v.confirm || (spec?.confirm ?? false),
        lifetimeLeft: null,
        lastUsed: null,
      });
    }
    return out;
  }

  reload(): readonly string[] {
    const next = loadPolicyState(this.options.configPath, this.options.env);
    const previous = this.current;
    next.registered.adoptFrom(previous.registered);
    this.current = next;
    this.options.onReload?.(next, previous);
    this.options.logger?.info({ config: next.config.file, registered: next.registered.list().length }, 'configuration reloaded');
    for (const w of next.warnings) this.options.logger?.warn({ reason: w }, 'registered key not loaded');
    return next.warnings;
  }

  async unlockKey(name: string, passphrase: Buffer): Promise<void> {
    await this.current.registered.unlockWith(name, passphrase);
  }
}
