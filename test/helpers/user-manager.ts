/**
 * A real `systemd --user` on a machine without systemd as PID 1, as
 * shared/SYSTEMD-USER-MANAGER.md describes: a fresh user, its /run/user/UID tmpfs, its cgroups,
 * /run/systemd/{system,unit-root}, /run bind-mounted onto itself, then the manager started as
 * that user. Root only. Every step is recorded with its undo, and `teardown()` undoes them in
 * reverse order, by PID and by path — including after a failure half-way through setup.
 * Refuses to run where systemd did boot (/run/systemd/system exists): that is a real system.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cleanEnv, run, runOk, sleep, startDaemon } from './proc';
import type { DaemonHandle, RunResult } from './proc';

const SYSTEMD = '/lib/systemd/systemd';
const CGROUP_ROOTS = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'];

export interface UserManager {
  readonly user: string;
  readonly uid: number;
  readonly home: string;
  readonly runtimeDir: string;
  /** The environment a login of this user has (HOME, XDG_RUNTIME_DIR, the bus, PATH). */
  readonly env: NodeJS.ProcessEnv;
  /** Runs `cmd args` as the user with `env` (plus `extra`), bounded. */
  asUser(cmd: string, args: readonly string[], extra?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<RunResult>;
  /** The command line that runs `cmd args` as the user (setpriv ... env -i ...), for a caller's own spawn. */
  argvAsUser(cmd: string, args: readonly string[], extra?: NodeJS.ProcessEnv): { command: string; args: string[] };
  /** Starts a long-running process as the user; teardown stops it by PID. */
  spawnAsUser(cmd: string, args: readonly string[]): Promise<DaemonHandle>;
  /** `systemctl --user ARGS` as the user; throws on a non-zero exit. */
  systemctl(...args: string[]): Promise<RunResult>;
  /** Undoes everything setup did, in reverse order; idempotent; collects errors. */
  teardown(): Promise<void>;
}

/** Why this machine cannot host the recipe, or undefined when it can. */
export function userManagerUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (existsSync('/run/systemd/system')) return '/run/systemd/system exists: systemd booted here, refusing to fake it';
  if (!existsSync(SYSTEMD)) return `${SYSTEMD} missing (apt-get install -y systemd)`;
  for (const c of CGROUP_ROOTS) if (!existsSync(join(c, 'cgroup.procs'))) return `no cgroup hierarchy at ${c}`;
  return undefined;
}

function isMountPoint(path: string): boolean {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  return mounts.some((l) => l.split(' ')[4] === path);
}

function cgroupDirs(uid: number): string[] {
  return CGROUP_ROOTS.map((r) => join(r, 'user.slice', `user-${uid}.slice`, `user@${uid}.service`));
}

/** Every pid in `dir` and below (cgroup.procs), deepest first. */
function cgroupPids(dir: string): number[] {
  if (!existsSync(dir)) return [];
  const pids: number[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) pids.push(...cgroupPids(join(dir, e.name)));
  try {
    for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (p !== '') pids.push(Number(p));
  } catch {
    /* gone */
  }
  return pids;
}

/** rmdir `dir` and its sub-cgroups, deepest first (cgroup directories only go that way). */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(join(dir, e.name));
  rmdirSync(dir);
}

/**
 * Undoes `mount --rbind /run /run`. On a shared machine any process that opens a file under
 * /run meanwhile holds the bind busy for a moment: retry for up to 10 s, then detach it
 * lazily (the files stay where they are, the bind and the original are one directory).
 * Never unmounts anything once /run is no longer a mount point of its own.
 */
async function unmountRunBind(): Promise<void> {
  let last: RunResult | undefined;
  for (let i = 0; i < 40; i++) {
    if (!isMountPoint('/run')) return;
    last = await run('umount', ['-R', '/run']);
    if (last.code === 0) return;
    await sleep(250);
  }
  if (!isMountPoint('/run')) return;
  const lazy = await run('umount', ['-R', '--lazy', '/run']);
  if (lazy.code !== 0) throw new Error(`umount -R /run: ${last?.stderr.trim() ?? ''}; --lazy: ${lazy.stderr.trim()}`);
}

export async function startUserManager(): Promise<UserManager> {
  const undo: Array<{ what: string; fn: () => Promise<void> | void }> = [];
  const teardown = async (): Promise<void> => {
    const errors: string[] = [];
    while (undo.length > 0) {
      const step = undo.pop()!;
      try {
        await step.fn();
      } catch (err) {
        errors.push(`${step.what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (errors.length > 0) throw new Error(`user manager teardown incomplete:\n${errors.join('\n')}`);
  };

  try {
    const user = `tsa-sd-${randomBytes(3).toString('hex')}`;
    await runOk('useradd', ['--create-home', '--shell', '/bin/bash', user]);
    undo.push({ what: `userdel ${user}`, fn: async () => void (await runOk('userdel', ['--remove', user])) });
    const uid = Number((await runOk('id', ['-u', user])).stdout.trim());
    const home = `/home/${user}`;

    // 1. /run/user/UID: a 0700 tmpfs owned by the user (pam_systemd/logind would make it).
    const runtimeDir = `/run/user/${uid}`;
    mkdirSync(runtimeDir, { recursive: true });
    undo.push({ what: `rmdir ${runtimeDir}`, fn: () => rmdirSync(runtimeDir) });
    await runOk('mount', ['-t', 'tmpfs', '-o', `mode=0700,uid=${uid},gid=${uid}`, 'tmpfs', runtimeDir]);
    undo.push({ what: `umount ${runtimeDir}`, fn: async () => void (await runOk('umount', [runtimeDir])) });

    // 3. The cgroup PID 1 would give user@UID.service, in both hierarchies, owned by the user.
    for (const dir of cgroupDirs(uid)) {
      // Each level made here is removed again (user.slice, user-UID.slice, user@UID.service).
      const made: string[] = [];
      for (let d = dir; !existsSync(d); d = dirname(d)) made.unshift(d);
      for (const d of made) {
        mkdirSync(d);
        undo.push({ what: `rmdir cgroup ${d}`, fn: () => removeCgroup(d) });
      }
      await runOk('chown', ['-R', `${uid}:${uid}`, dir]);
    }

    // 4. What makes systemctl and the manager believe systemd runs (refused above if it does).
    for (const dir of ['/run/systemd/system', '/run/systemd/unit-root']) {
      mkdirSync(dir, { mode: 0o700 });
      undo.push({ what: `rm ${dir}`, fn: () => rmSync(dir, { recursive: true, force: true }) });
    }
    if (!isMountPoint('/run')) {
      await runOk('mount', ['--rbind', '/run', '/run']);
      // Before the tmpfs stacked under the bind is unmounted; see unmountRunBind.
      undo.push({ what: 'umount -R /run', fn: unmountRunBind });
    }

    // 5. The manager, moved into its cgroups before it execs, as the user.
    const [unified, legacy] = cgroupDirs(uid);
    const env = {
      HOME: home,
      USER: user,
      LOGNAME: user,
      SHELL: '/bin/bash',
      PATH: '/usr/local/bin:/usr/bin:/bin',
      XDG_RUNTIME_DIR: runtimeDir,
      DBUS_SESSION_BUS_ADDRESS: `unix:path=${runtimeDir}/bus`,
    };
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const asUserArgv = (cmd: string, args: readonly string[], extra: NodeJS.ProcessEnv = {}): string[] => [
      `--reuid=${uid}`,
      `--regid=${uid}`,
      '--init-groups',
      'env',
      '-i',
      ...envArgs,
      ...Object.entries(extra).map(([k, v]) => `${k}=${v ?? ''}`),
      cmd,
      ...args,
    ];
    const manager = await startDaemon(
      '/bin/sh',
      [
        '-c',
        `echo $$ > ${unified}/cgroup.procs && echo $$ > ${legacy}/cgroup.procs && exec setpriv "$@"`,
        'sh',
        ...asUserArgv(SYSTEMD, ['--user']),
      ],
      { env: cleanEnv(), name: 'systemd --user', killGraceMs: 20_000 },
    );
    undo.push({
      what: 'stop the user manager and what it left',
      fn: async () => {
        await manager.stop();
        for (const dir of cgroupDirs(uid)) {
          for (const pid of cgroupPids(dir)) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              /* gone */
            }
          }
        }
        for (let i = 0; i < 50 && cgroupDirs(uid).some((d) => cgroupPids(d).length > 0); i++) await sleep(100);
      },
    });

    const asUser = (cmd: string, args: readonly string[], extra?: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<RunResult> =>
      run('setpriv', asUserArgv(cmd, args, extra), { env: cleanEnv(), cwd: '/', timeoutMs });
    const spawnAsUser = async (cmd: string, args: readonly string[]): Promise<DaemonHandle> => {
      const d = await startDaemon('setpriv', asUserArgv(cmd, args), { env: cleanEnv(), cwd: '/' });
      undo.push({ what: `stop ${cmd}`, fn: () => d.stop() });
      return d;
    };
    const systemctl = async (...args: string[]): Promise<RunResult> => {
      const r = await asUser('systemctl', ['--user', ...args]);
      if (r.code !== 0) throw new Error(`systemctl --user ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
      return r;
    };

    let state = '';
    for (let i = 0; i < 100 && state !== 'running' && state !== 'degraded'; i++) {
      if (!manager.alive()) throw new Error(`systemd --user exited:\n${manager.stderr()}`);
      state = (await asUser('systemctl', ['--user', 'is-system-running'], {}, 10_000)).stdout.trim();
      if (state !== 'running' && state !== 'degraded') await sleep(200);
    }
    if (state !== 'running' && state !== 'degraded')
      throw new Error(`systemd --user did not come up (state ${JSON.stringify(state)})`);
    const argvAsUser = (cmd: string, args: readonly string[], extra?: NodeJS.ProcessEnv) => ({
      command: 'setpriv',
      args: asUserArgv(cmd, args, extra),
    });
    return { user, uid, home, runtimeDir, env, asUser, argvAsUser, spawnAsUser, systemctl, teardown };
  } catch (err) {
    await teardown().catch((e: unknown) => {
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}\nand then: ${e instanceof Error ? e.message : String(e)}`,
      );
    });
    throw err;
  }
}
