/**
 * The daemon's side of the control commands (ControlTarget, POLICY.md §5) and its current
 * policy state: the config in force and the registered keys it names. `reload` builds the
 * new state completely before swapping it in, so an invalid file leaves everything as it
 * was (the command exits 1 with the ConfigError's message).
 *
 * The registered keys live in the keyring (Keyring.setRegistered, at start and on every
 * reload), which also asks their passphrases through askpass when a signature needs them.
 */
import type { Logger } from '../log';
import type { Keyring } from '../agent/keyring';
import { askpassPassphrase } from '../policy/askpass-passphrase';
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
  return {
    config,
    registered: keys,
    policy: RulePolicy.fromConfig(config, keys.fileFingerprints()),
    warnings: errors.map((e) => e.message),
  };
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
  /** Told of every failed reload (the old configuration stays): the audit `config` record. */
  readonly onReloadFailed?: (err: Error) => void;
}

export class DaemonControl implements ControlTarget {
  private current: PolicyState;
  private readonly startedAt = Date.now();

  constructor(private readonly options: DaemonControlOptions) {
    this.current = options.initial;
    options.keyring.setRegistered(options.initial.registered, askpassPassphrase(options.env));
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
      // held: keys added with ssh-add (registered keys live in the keyring too, counted apart).
      keys: {
        held: this.options.keyring.keyFacts().filter((f) => f.view.source !== 'config').length,
        registered: this.current.registered.list().length,
      },
      locked: this.options.keyring.locked,
      uptimeSeconds: Math.floor((Date.now() - this.startedAt) / 1000),
    };
  }

  keys(): readonly KeyJson[] {
    const reg = this.current.registered;
    const byFp = new Map(this.current.config.keys.filter((k) => k.fingerprint !== null).map((k) => [k.fingerprint!, k]));
    return this.options.keyring.keyFacts().map(({ view, loaded, lifetimeLeft, lastUsed }) => {
      const spec =
        (view.source === 'config' && view.name !== null ? reg.byName(view.name)?.spec : undefined) ?? byFp.get(view.fingerprint);
      return {
        name: view.name,
        comment: view.comment,
        fingerprint: view.fingerprint,
        type: view.type,
        // "config", "added" (POLICY.md §5) or "pkcs11" for token keys (`ssh-add -s`, issue 15).
        source: view.source,
        loaded,
        hosts: spec?.hosts == null ? null : [...spec.hosts.source],
        confirm: view.confirm,
        lifetimeLeft,
        lastUsed,
      };
    });
  }

  reload(): readonly string[] {
    let next: PolicyState;
    try {
      next = loadPolicyState(this.options.configPath, this.options.env);
    } catch (err) {
      if (err instanceof Error) this.options.onReloadFailed?.(err);
      throw err;
    }
    const previous = this.current;
    next.registered.adoptFrom(previous.registered);
    this.current = next;
    this.options.keyring.setRegistered(next.registered, askpassPassphrase(this.options.env));
    this.options.onReload?.(next, previous);
    this.options.logger?.info({ config: next.config.file, registered: next.registered.list().length }, 'configuration reloaded');
    for (const w of next.warnings) this.options.logger?.warn({ reason: w }, 'registered key not loaded');
    return next.warnings;
  }

  async unlockKey(name: string, passphrase: Buffer): Promise<void> {
    await this.options.keyring.unlockRegistered(name, passphrase);
  }
}
