/**
 * The "policy on" run (issues 12 and 16): what tsagent is started with in each policy mode,
 * and the session-bind the load generator sends once per connection.
 *
 * - `off`: `--config` with `[audit] enabled = false` (no rules, no key settings, no log);
 * - `audit`: `--config` with only `[audit] file` in the agent's temp dir;
 * - `on`: 20 `[[key]] fingerprint =` entries (the 4 bench keys and the first 16 big-keyring
 *   keys, all added with the bench's normal add path; 10 of them with `hosts`), 10 `[[rule]]`s
 *   of which only the last (an allow with no fields) matches the bench's requests, the audit
 *   log in the temp dir, and `~/.ssh/known_hosts` naming the bench host key so the bound
 *   destination resolves to a name (POLICY.md §1, §2, §6).
 *
 * The `hosts` given match the bench's destination, so the agent lists the same identities in
 * the same order as OpenSSH's (the list checks stay exact) but still does the matching work.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprint } from '../src/keys/fingerprint';
import { signatureBlob } from '../src/keys/sign';
import { encodeRequestFrame } from '../src/protocol/codec';
import { SESSION_BIND, encodeSessionBind } from '../src/protocol/session-bind';
import { SshWriter } from '../src/protocol/wire';

export type PolicyMode = 'off' | 'audit' | 'on';

/** The name known_hosts gives the bench host key. */
export const BENCH_HOST = 'bench-host.test';

export interface BenchBinding {
  /** One EXTENSION `session-bind@openssh.com` frame (the same for every connection). */
  readonly frame: Buffer;
  /** The known_hosts line naming the host key. */
  readonly knownHostsLine: string;
}

/** An ed25519 host key that signs a random 32-byte session id, as a server's KEX reply would. */
export function makeBinding(): BenchBinding {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  const hostKey = new SshWriter(64).string('ssh-ed25519').string(raw).finish();
  const sessionId = randomBytes(32);
  const signature = signatureBlob('ssh-ed25519', sign(null, sessionId, privateKey));
  const contents = encodeSessionBind({ hostKey, sessionId, signature, isForwarding: false });
  return {
    frame: encodeRequestFrame({ type: 'extension', name: SESSION_BIND, contents }),
    knownHostsLine: `${BENCH_HOST} ssh-ed25519 ${hostKey.toString('base64')}\n`,
  };
}

/** The key blobs the `on` config names: 20, of which the first 10 get `hosts`. */
export const CONFIG_KEYS = 20;
export const KEYS_WITH_HOSTS = 10;
export const RULES = 10;

function configText(mode: PolicyMode, dir: string, keyBlobs: readonly Buffer[]): string {
  if (mode === 'off') return '[audit]\nenabled = false\n';
  const audit = `[audit]\nfile = ${JSON.stringify(join(dir, 'audit.jsonl'))}\n`;
  if (mode === 'audit') return audit;
  const parts = [audit];
  keyBlobs.slice(0, CONFIG_KEYS).forEach((blob, i) => {
    parts.push(`[[key]]\nfingerprint = "${fingerprint(blob)}"\nname = "bench-config-${i}"\n`);
    if (i < KEYS_WITH_HOSTS) parts.push(`hosts = ["git${i}.example.org", "*.other${i}.example", "${BENCH_HOST}"]\n`);
  });
  // Nine rules that do not match the bench's requests (each on a different field, the
  // mismatch last where a rule has several), then the allow that does.
  const misses = [
    'hosts = ["*.prod.example.com"]',
    'processes = ["/usr/bin/ssh", "git"]',
    'parents = ["sshd", "systemd-nonexistent"]',
    'purposes = ["login"]',
    'purposes = ["sign:git", "sign:file"]',
    'forwarded = true',
    'keys = ["*"]\npurposes = ["*"]\nhosts = ["!' + BENCH_HOST + '", "*.test"]',
    'keys = ["bench-config-*"]\nprocesses = ["/opt/nothing/*"]',
    'keys = ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]',
  ];
  for (const m of misses) parts.push(`[[rule]]\n${m}\naction = "deny"\n`);
  parts.push('[[rule]]\naction = "allow"\n');
  return parts.join('\n');
}

/**
 * Writes the mode's config (and, for `on`, `~/.ssh/known_hosts` with HOME = dir) into the
 * agent's temp dir; returns the extra `tsagent start` arguments.
 */
export function preparePolicy(
  mode: PolicyMode,
  dir: string,
  keyBlobs: readonly Buffer[],
  binding: BenchBinding,
): readonly string[] {
  const file = join(dir, 'config.toml');
  writeFileSync(file, configText(mode, dir, keyBlobs), { mode: 0o600 });
  if (mode === 'on') {
    mkdirSync(join(dir, '.ssh'), { mode: 0o700 });
    writeFileSync(join(dir, '.ssh', 'known_hosts'), binding.knownHostsLine, { mode: 0o600 });
  }
  return ['--config', file];
}
