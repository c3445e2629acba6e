/**
 * Finding the real peer programs (OpenSSH, python3 + paramiko) that interop tests drive.
 *
 * A missing peer is a FAILURE under CI (`process.env.CI` set to anything but "" / "0" /
 * "false"): `requirePeer` throws. On a developer machine it skips the test instead. That
 * policy lives in `skipOrFail` alone; tests with other prerequisites (root, a library) use it too.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { TestContext } from 'node:test';

/** The part of a TestContext these helpers need (keeps them usable from hooks and subtests). */
export type SkipContext = Pick<TestContext, 'skip'>;

/** The interpreter the Debian `python3-paramiko` package installs for. */
export const PYTHON3 = '/usr/bin/python3';

/** True when running under CI, where a missing peer must fail rather than skip. */
export function underCI(): boolean {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Absolute path of an executable named `name`, searched in PATH and then /usr/sbin, /usr/bin,
 * /sbin, /bin (sshd lives in /usr/sbin, often not in a non-root PATH). An absolute `name` is
 * checked as is.
 */
export function findPeer(name: string): string | undefined {
  if (isAbsolute(name)) return isExecutableFile(name) ? name : undefined;
  if (name.includes('/')) return undefined;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    if (d === '' || !isAbsolute(d)) continue;
    const p = join(d, name);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

/**
 * The one skip policy (every test helper and test goes through it): a prerequisite that is
 * absent skips the test with `reason` — unless under CI, where it throws, so a CI run never
 * passes by skipping. Returns undefined: the caller then `return`s.
 */
export function skipOrFail(t: SkipContext, reason: string): undefined {
  if (underCI()) throw new Error(`${reason}; a missing peer fails under CI`);
  t.skip(reason);
  return undefined;
}

/** `skipOrFail` for a peer that is not installed, with how to install it. */
export function peerMissing(t: SkipContext, what: string, hint: string): undefined {
  return skipOrFail(t, `${what} not installed (${hint})`);
}

/** Install hints for the messages. */
const INSTALL_HINT: Readonly<Record<string, string>> = {
  ssh: 'apt-get install -y openssh-client',
  'ssh-add': 'apt-get install -y openssh-client',
  'ssh-agent': 'apt-get install -y openssh-client',
  'ssh-keygen': 'apt-get install -y openssh-client',
  sshd: 'apt-get install -y openssh-server',
  'systemd-socket-activate': 'apt-get install -y systemd',
  'systemd-analyze': 'apt-get install -y systemd',
  '/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator': 'apt-get install -y systemd',
  go: 'apt-get install -y golang-go',
  gcore: 'apt-get install -y gdb',
  zsh: 'apt-get install -y zsh',
  fish: 'apt-get install -y fish',
  tcsh: 'apt-get install -y tcsh',
};

/**
 * The peer's absolute path. When it is missing: under CI throws; otherwise calls
 * `t.skip('<name> not installed ...')` and returns undefined — the caller must then `return`.
 */
export function requirePeer(t: SkipContext, name: string): string | undefined {
  const p = findPeer(name);
  if (p !== undefined) return p;
  return peerMissing(t, name, INSTALL_HINT[name] ?? 'not found in PATH, /usr/sbin or /usr/bin');
}

/** All of `names`, or undefined (after skipping / throwing on the first missing one). */
export function requirePeers<const N extends readonly string[]>(
  t: SkipContext,
  names: N,
): { [K in N[number]]: string } | undefined {
  const out: Record<string, string> = {};
  for (const n of names) {
    const p = requirePeer(t, n);
    if (p === undefined) return undefined;
    out[n] = p;
  }
  return out as { [K in N[number]]: string };
}

/**
 * Checks that `/usr/bin/python3 -c "import <module>"` succeeds (bounded to 20 s) and returns
 * the interpreter path; otherwise behaves like `requirePeer` (throw under CI, else skip).
 */
export function requirePython(t: SkipContext, module = 'paramiko'): string | undefined {
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(module)) {
    throw new Error(`requirePython: not a Python module name: ${JSON.stringify(module)}`);
  }
  const hint = module === 'paramiko' ? 'apt-get install -y python3-paramiko' : `python3 module ${module}`;
  if (!isExecutableFile(PYTHON3)) return peerMissing(t, `${PYTHON3} (for ${module})`, hint);
  const r = spawnSync(PYTHON3, ['-c', `import ${module}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 20_000,
    killSignal: 'SIGKILL',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  if (r.status === 0) return PYTHON3;
  return peerMissing(t, `python3 module ${module}`, hint);
}

/**
 * The peer's path, for module-level setup where a skip is not possible: throws when it is
 * missing (stricter than requirePeer, never a silent skip).
 */
export function findPeerOrFail(name: string): string {
  const p = findPeer(name);
  if (p === undefined) throw new Error(`required peer ${name} is not installed`);
  return p;
}
