/**
 * A real OpenSSH server for login tests: `/usr/sbin/sshd -D -E <log> -f <conf> -p <port>`
 * listening on 127.0.0.1 only, with a fresh host key, its own authorized_keys, no PAM, no
 * passwords. `sshArgs()` builds an `ssh` command line that trusts exactly that host key and
 * authenticates ONLY with the agent in SSH_AUTH_SOCK (no ~/.ssh keys, no config files).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { generateKey } from './keys';
import type { KeyType } from './keys';
import { findPeer } from './peers';
import { cleanEnv, freePort, removeDir, startDaemon, tempDir, waitForPort } from './proc';
import type { DaemonHandle } from './proc';

export interface SshdOptions {
  /** OpenSSH public key lines accepted for the current user (may be empty). */
  authorizedKeys: readonly string[];
  /** Path of a file of CA public key lines (TrustedUserCAKeys) for certificate logins. */
  trustedUserCAKeys?: string;
  /** Default true. */
  allowAgentForwarding?: boolean;
  /** Default 'ed25519'. */
  hostKeyType?: Extract<KeyType, 'ed25519' | 'ecdsa-256' | 'rsa-2048'>;
  /**
   * Extra sshd_config lines, placed BEFORE the defaults (sshd keeps the first value of a
   * keyword, so these override them), e.g. 'PubkeyAcceptedAlgorithms +ssh-rsa',
   * 'AuthorizedPrincipalsFile /x', 'LogLevel DEBUG3'. No `Match` blocks (they would capture the defaults).
   */
  extraConfig?: readonly string[];
  /** Bound on waiting for the port. Default 15000. */
  timeoutMs?: number;
}

export interface Sshd {
  readonly port: number;
  readonly host: '127.0.0.1';
  /** The login user: os.userInfo().username (root in CI). */
  readonly user: string;
  readonly pid: number;
  /** The server's temp dir (config, host key, authorized_keys, log, client home). */
  readonly dir: string;
  readonly knownHostsPath: string;
  readonly hostKeyPublicLine: string;
  readonly authorizedKeysPath: string;
  /** sshd's own log (LogLevel DEBUG1, via -E). */
  readonly logPath: string;
  readonly daemon: DaemonHandle;
  /**
   * Arguments for `ssh`: `-F /dev/null`, then `extra` (e.g. ['-A'], ['-o','LogLevel=DEBUG1'] —
   * placed before our -o options because ssh keeps the first value), then the harness options,
   * then `user@127.0.0.1`, then the remote `command` words.
   */
  sshArgs(extra?: readonly string[], command?: readonly string[]): string[];
  /** Env for `ssh`: PATH, HOME=<dir>/client-home, SSH_AUTH_SOCK=authSock (if given), extras. */
  clientEnv(authSock?: string, extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** Replace authorized_keys (sshd re-reads it on every authentication). */
  setAuthorizedKeys(lines: readonly string[]): Promise<void>;
  /** Current contents of the log file ('' if none yet). */
  log(): string;
  /** Kills sshd by PID (SIGTERM, then SIGKILL) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

const PRIVSEP_DIR = '/run/sshd';

function ensurePrivsepDir(): void {
  if (existsSync(PRIVSEP_DIR)) return;
  try {
    mkdirSync(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
  } catch (e: unknown) {
    // Not root: sshd will complain itself if it really needs it.
    if (!(e instanceof Error && 'code' in e && (e.code === 'EACCES' || e.code === 'EPERM'))) throw e;
  }
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function config(o: {
  dir: string;
  hostKeyPath: string;
  authorizedKeysPath: string;
  trustedUserCAKeys?: string;
  allowAgentForwarding: boolean;
  extra: readonly string[];
}): string {
  const lines = [
    '# written by test/helpers/sshd.ts',
    // sshd uses the FIRST value of a keyword, so caller lines go first and override ours.
    ...o.extra,
    'ListenAddress 127.0.0.1',
    'AddressFamily inet',
    `HostKey ${o.hostKeyPath}`,
    `PidFile ${join(o.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${o.authorizedKeysPath}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin yes',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'HostbasedAuthentication no',
    `AllowAgentForwarding ${o.allowAgentForwarding ? 'yes' : 'no'}`,
    'X11Forwarding no',
    'PermitUserEnvironment no',
    'PrintMotd no',
    'PrintLastLog no',
    'UseDNS no',
    'LoginGraceTime 30',
    'MaxStartups 100',
    'MaxSessions 20',
    'MaxAuthTries 20',
    'LogLevel DEBUG1',
  ];
  if (o.trustedUserCAKeys !== undefined) lines.push(`TrustedUserCAKeys ${o.trustedUserCAKeys}`);
  return `${lines.join('\n')}\n`;
}

async function writeAuthorizedKeys(path: string, keys: readonly string[]): Promise<void> {
  for (const k of keys) if (k.includes('\n')) throw new Error('authorized key lines must not contain newlines');
  await writeFile(path, keys.map((k) => `${k.trim()}\n`).join(''), { mode: 0o600 });
}

/**
 * argv for OpenSSH's `ssh` to a test server on 127.0.0.1: no user config, the given
 * known_hosts only (strict), public-key authentication only, no multiplexing, bounded
 * connect. Shared by startSshd's `sshArgs` and tests against other servers (ssh2).
 */
export function sshClientArgs(o: {
  readonly port: number;
  readonly knownHostsPath: string;
  readonly user: string;
  readonly extra?: readonly string[];
  readonly command?: readonly string[];
}): string[] {
  return [
    '-F',
    '/dev/null',
    // ssh keeps the FIRST value of an option: caller options go first and override ours.
    ...(o.extra ?? []),
    '-p',
    String(o.port),
    '-o',
    `UserKnownHostsFile=${o.knownHostsPath}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'UpdateHostKeys=no',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=no',
    // "none": no default ~/.ssh/id_* files (ssh ignores HOME for those, it uses the passwd dir).
    '-o',
    'IdentityFile=none',
    '-o',
    'PreferredAuthentications=publickey',
    '-o',
    'PasswordAuthentication=no',
    '-o',
    'KbdInteractiveAuthentication=no',
    '-o',
    'ControlMaster=no',
    '-o',
    'ControlPath=none',
    '-o',
    'ConnectTimeout=10',
    '-o',
    'ConnectionAttempts=1',
    '-o',
    'AddKeysToAgent=no',
    '-o',
    'LogLevel=ERROR',
    `${o.user}@127.0.0.1`,
    ...(o.command ?? []),
  ];
}

/**
 * Starts sshd on a free 127.0.0.1 port and waits (bounded) until it accepts TCP. Retries
 * with a new port (up to 3 times) if the port was taken in between. With `t`, registers
 * `t.after(stop)`. Throws if sshd is missing — call `requirePeer(t, 'sshd')` first.
 */
export async function startSshd(opts: SshdOptions, t?: Pick<TestContext, 'after'>): Promise<Sshd> {
  const bin = findPeer('sshd');
  if (bin === undefined) throw new Error('sshd is not installed (apt-get install -y openssh-server)');
  ensurePrivsepDir();
  const dir = await tempDir('sshd-');
  let started = false;
  try {
    const hostKey = await generateKey(dir, opts.hostKeyType ?? 'ed25519', 'tsagent-test-hostkey', {
      name: 'ssh_host_key',
    });
    const authorizedKeysPath = join(dir, 'authorized_keys');
    await writeAuthorizedKeys(authorizedKeysPath, opts.authorizedKeys);
    const confPath = join(dir, 'sshd_config');
    await writeFile(
      confPath,
      config({
        dir,
        hostKeyPath: hostKey.privatePath,
        authorizedKeysPath,
        trustedUserCAKeys: opts.trustedUserCAKeys,
        allowAgentForwarding: opts.allowAgentForwarding ?? true,
        extra: opts.extraConfig ?? [],
      }),
      { mode: 0o644 },
    );
    const clientHome = join(dir, 'client-home');
    mkdirSync(clientHome, { mode: 0o700 });
    const logPath = join(dir, 'sshd.log');
    const knownHostsPath = join(dir, 'known_hosts');
    const user = userInfo().username;

    let daemon: DaemonHandle | undefined;
    let port = 0;
    let lastErr: unknown;
    for (let attempt = 0; attempt < 3 && daemon === undefined; attempt++) {
      port = await freePort();
      // sshd must be started by absolute path (it re-execs itself per connection).
      const d = await startDaemon(bin, ['-D', '-E', logPath, '-f', confPath, '-p', String(port)], {
        env: cleanEnv(),
        name: `sshd :${port}`,
      });
      try {
        await waitForPort(port, '127.0.0.1', opts.timeoutMs ?? 15_000, d);
        daemon = d;
      } catch (e: unknown) {
        await d.stop();
        const log = readLog(logPath);
        lastErr = new Error(`${e instanceof Error ? e.message : String(e)}\nsshd log (tail):\n${log.slice(-4000)}`);
        if (!/Address already in use|Cannot bind any address/.test(log + d.stderr())) break;
      }
    }
    if (daemon === undefined) throw lastErr instanceof Error ? lastErr : new Error('sshd did not start');
    const running = daemon;

    const hostKeyPublicLine = hostKey.publicLine;
    const [algo, b64] = hostKeyPublicLine.split(/\s+/);
    await writeFile(knownHostsPath, `[127.0.0.1]:${port} ${algo} ${b64}\n`, { mode: 0o644 });

    const stop = async (): Promise<void> => {
      try {
        await running.stop();
      } finally {
        await removeDir(dir);
      }
    };
    if (t !== undefined) t.after(() => stop());
    started = true;

    return {
      port,
      host: '127.0.0.1',
      user,
      pid: running.pid,
      dir,
      knownHostsPath,
      hostKeyPublicLine,
      authorizedKeysPath,
      logPath,
      daemon: running,
      sshArgs: (extra: readonly string[] = [], command: readonly string[] = []) =>
        sshClientArgs({ port, knownHostsPath, user, extra, command }),
      clientEnv: (authSock?: string, extra: NodeJS.ProcessEnv = {}) =>
        cleanEnv({ HOME: clientHome, ...(authSock !== undefined ? { SSH_AUTH_SOCK: authSock } : {}), ...extra }),
      setAuthorizedKeys: (lines: readonly string[]) => writeAuthorizedKeys(authorizedKeysPath, lines),
      log: () => readLog(logPath),
      stop,
    };
  } finally {
    if (!started) await removeDir(dir);
  }
}
