/**
 * `tsagent service install|uninstall`: writes (removes) the systemd user units tsagent.socket,
 * tsagent-control.socket and tsagent.service and the environment.d snippet that sets
 * SSH_AUTH_SOCK, and prints the `systemctl --user` lines to run and the profile line for ssh
 * and console logins (appended to a profile with --shell-profile). Both are idempotent and
 * touch only files that carry tsagent's marker line; no unit is written or removed when any
 * check fails.
 */
import { lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { ServiceError } from '../errors';
import { TSAGENT_JS, enableLink, envFile, serviceDirs, serviceFiles } from './service-locations';
import type { ServiceDirs, ServiceFile } from './service-locations';
import { errno, readExisting, writeAtomically } from './service-files';
import type { Io } from './start';
import { PROFILE_LINES, addProfileLine, defaultProfile, profileCandidates, removeProfileLine } from './shell-profile';
import { isGenerated, renderTemplate } from './systemd-units';

export interface ServiceFlags {
  /** Unit directory (default `$XDG_CONFIG_HOME/systemd/user`). */
  readonly dir?: string;
  /** environment.d directory (default `$XDG_CONFIG_HOME/environment.d`). */
  readonly envDir?: string;
  /** Also add (install) / look in (uninstall) this profile; `true`: the login shell's own. */
  readonly shellProfile?: string | boolean;
}

/** The line for the current shell, matching systemd/environment.d/tsagent.conf. */
export const SSH_AUTH_SOCK_LINE = 'export SSH_AUTH_SOCK="$XDG_RUNTIME_DIR/tsagent/agent.sock"';

function refuseForeign(path: string, text: string | undefined): void {
  if (text !== undefined && !isGenerated(text)) {
    throw new ServiceError(`${path} exists and was not written by tsagent; move it away first`);
  }
}

function renderAll(files: readonly ServiceFile[]): Array<{ readonly target: string; readonly text: string }> {
  const paths = { node: process.execPath, script: TSAGENT_JS };
  return files.map((f) => {
    let template: string;
    try {
      template = readFileSync(f.template, 'utf8');
    } catch (err) {
      throw new ServiceError(`the tsagent package is missing ${f.template}: ${errno(err)}`, { cause: err });
    }
    return { target: f.target, text: renderTemplate(template, paths) };
  });
}

function searchNote(dirs: ServiceDirs): string {
  if (dirs.defaultUnitDir === dirs.unitDir) return '';
  return `note: systemctl --user does not look in ${dirs.unitDir}${dirs.defaultUnitDir === undefined ? '' : ` (it reads ${dirs.defaultUnitDir})`}\n`;
}

export function installService(flags: ServiceFlags, io: Io): void {
  const dirs = serviceDirs(flags, io.env);
  const rendered = renderAll(serviceFiles(dirs));
  const existing = rendered.map((r) => readExisting(r.target));
  rendered.forEach((r, i) => refuseForeign(r.target, existing[i]));
  const report: string[] = [];
  rendered.forEach((r, i) => {
    if (existing[i] === r.text) {
      report.push(`unchanged ${r.target}`);
      return;
    }
    writeAtomically(r.target, r.text);
    report.push(`wrote ${r.target}`);
  });
  const profile = chosenProfile(flags, io.env);
  if (profile !== undefined) report.push(addProfileLine(profile));
  io.out(
    `${report.join('\n')}\n${searchNote(dirs)}` +
      'Start the agent now and at every login:\n' +
      '  systemctl --user daemon-reload\n' +
      '  systemctl --user enable --now tsagent.socket\n' +
      `Sessions the user manager starts (graphical logins) get SSH_AUTH_SOCK from ${envFile(dirs)}.\n` +
      (profile === undefined
        ? 'ssh and console logins read your shell profile instead: add this line to ~/.profile\n' +
          '(bash: ~/.bash_profile if you have one; zsh: ~/.zprofile), or rerun with --shell-profile:\n' +
          `  ${PROFILE_LINES.sh}\n` +
          'fish (~/.config/fish/conf.d/tsagent.fish):\n' +
          `  ${PROFILE_LINES.fish}\n` +
          'csh/tcsh (~/.login):\n' +
          `  ${PROFILE_LINES.csh}\n`
        : `ssh and console logins get it from ${profile}.\n`) +
      'In this shell:\n' +
      `  ${SSH_AUTH_SOCK_LINE}\n`,
  );
}

/** The profile --shell-profile names, if given. */
function chosenProfile(flags: ServiceFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.shellProfile === undefined || flags.shellProfile === false) return undefined;
  return flags.shellProfile === true ? defaultProfile(env) : resolve(flags.shellProfile);
}

/** Removes the marked profile line from every usual profile and the one --shell-profile names. */
function removeProfileLines(flags: ServiceFlags, env: NodeJS.ProcessEnv): string[] {
  const files = new Set<string>();
  const chosen = chosenProfile(flags, env);
  if (chosen !== undefined) files.add(chosen);
  try {
    for (const f of profileCandidates(env)) files.add(f);
  } catch (err) {
    // No HOME: only an explicitly named profile can be cleaned.
    if (!(err instanceof ServiceError)) throw err;
  }
  return [...files].map(removeProfileLine).filter((r): r is string => r !== undefined);
}

export function uninstallService(flags: ServiceFlags, io: Io): void {
  const dirs = serviceDirs(flags, io.env);
  const link = enableLink(dirs);
  let enabled = true;
  try {
    lstatSync(link);
  } catch {
    enabled = false;
  }
  if (enabled) {
    throw new ServiceError(
      `tsagent.socket is still enabled (${link}); first run:\n` +
        '  systemctl --user disable --now tsagent.socket\n' +
        '  systemctl --user stop tsagent.service\n' +
        'then tsagent service uninstall again',
    );
  }
  const files = serviceFiles(dirs);
  const existing = files.map((f) => readExisting(f.target));
  files.forEach((f, i) => refuseForeign(f.target, existing[i]));
  const report: string[] = [];
  files.forEach((f, i) => {
    if (existing[i] === undefined) {
      report.push(`not installed ${f.target}`);
      return;
    }
    try {
      unlinkSync(f.target);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw new ServiceError(`cannot remove ${f.target}: ${errno(err)}`, { cause: err });
    }
    report.push(`removed ${f.target}`);
  });
  report.push(...removeProfileLines(flags, io.env));
  io.out(
    `${report.join('\n')}\n` +
      'Stop the agent if it still runs, and make systemd forget the units:\n' +
      '  systemctl --user stop tsagent.socket tsagent.service\n' +
      '  systemctl --user daemon-reload\n' +
      'Login sessions no longer get SSH_AUTH_SOCK from tsagent; in this shell:\n' +
      '  unset SSH_AUTH_SOCK\n',
  );
}

/** The `tsagent service` command with its two subcommands, for main.ts to register. */
export function serviceCommand(io: Io): Command {
  const service = new Command('service').description('install or remove the systemd user units (socket activation)');
  const dirOptions = (cmd: Command): Command =>
    cmd
      .option('--dir <dir>', 'unit directory (default: $XDG_CONFIG_HOME/systemd/user, i.e. ~/.config/systemd/user)')
      .option('--env-dir <dir>', 'environment.d directory (default: $XDG_CONFIG_HOME/environment.d)')
      .option('--shell-profile [file]', 'install: append the SSH_AUTH_SOCK line for ssh and console logins to this profile (default: your login shell\'s); uninstall: look in it too')
      .exitOverride()
      .configureOutput({ writeOut: io.out, writeErr: io.err })
      .showHelpAfterError();
  service.addCommand(
    dirOptions(new Command('install'))
      .description('write tsagent.socket, tsagent-control.socket, tsagent.service and environment.d/tsagent.conf; print the systemctl lines')
      .action((flags: ServiceFlags) => installService(flags, io)),
  );
  service.addCommand(
    dirOptions(new Command('uninstall'))
      .description('remove the files and profile lines install wrote; print the systemctl lines')
      .action((flags: ServiceFlags) => uninstallService(flags, io)),
  );
  return service.exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err }).showHelpAfterError();
}
