/**
 * `tsagent service install|uninstall`: writes (removes) the systemd user units tsagent.socket
 * and tsagent.service and the environment.d snippet that sets SSH_AUTH_SOCK, and prints the
 * `systemctl --user` lines to run. Both are idempotent and touch only files that carry
 * tsagent's marker line; nothing is written or removed when any check fails.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Command } from 'commander';
import { ServiceError } from '../errors';
import { TSAGENT_JS, enableLink, envFile, serviceDirs, serviceFiles } from './service-locations';
import type { ServiceDirs, ServiceFile } from './service-locations';
import type { Io } from './start';
import { isGenerated, renderTemplate } from './systemd-units';

export interface ServiceFlags {
  /** Unit directory (default `$XDG_CONFIG_HOME/systemd/user`). */
  readonly dir?: string;
  /** environment.d directory (default `$XDG_CONFIG_HOME/environment.d`). */
  readonly envDir?: string;
}

/** The line for the current shell, matching systemd/environment.d/tsagent.conf. */
export const SSH_AUTH_SOCK_LINE = 'export SSH_AUTH_SOCK="$XDG_RUNTIME_DIR/tsagent/agent.sock"';

function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/** The file's text, or undefined when nothing is there. */
function readExisting(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw new ServiceError(`cannot read ${path}: ${errno(err)}`, { cause: err });
  }
}

function refuseForeign(path: string, text: string | undefined): void {
  if (text !== undefined && !isGenerated(text)) {
    throw new ServiceError(`${path} exists and was not written by tsagent; move it away first`);
  }
}

/** Write to a temporary file next to `path`, then rename over it: never a half-written unit. */
function writeAtomically(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o644, flag: 'wx' });
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created, or already renamed */
    }
    throw new ServiceError(`cannot write ${path}: ${errno(err)}`, { cause: err });
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
  io.out(
    `${report.join('\n')}\n${searchNote(dirs)}` +
      'Start the agent now and at every login:\n' +
      '  systemctl --user daemon-reload\n' +
      '  systemctl --user enable --now tsagent.socket\n' +
      `Login sessions started from now on get SSH_AUTH_SOCK from ${envFile(dirs)}; in this shell:\n` +
      `  ${SSH_AUTH_SOCK_LINE}\n`,
  );
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
      .exitOverride()
      .configureOutput({ writeOut: io.out, writeErr: io.err })
      .showHelpAfterError();
  service.addCommand(
    dirOptions(new Command('install'))
      .description('write tsagent.socket, tsagent.service and environment.d/tsagent.conf; print the systemctl lines')
      .action((flags: ServiceFlags) => installService(flags, io)),
  );
  service.addCommand(
    dirOptions(new Command('uninstall'))
      .description('remove the files install wrote; print the systemctl lines')
      .action((flags: ServiceFlags) => uninstallService(flags, io)),
  );
  return service.exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err }).showHelpAfterError();
}
