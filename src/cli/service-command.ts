/**
 * The `tsagent service` command line, for main.ts to register. The implementation
 * (./service, with the unit templates and file writing) is loaded only when a service
 * subcommand runs: it has no business on the start path (issue 16).
 */
import { Command } from 'commander';
import type { ServiceFlags } from './service';
import type { Io } from './start';

function impl(): typeof import('./service') {
  return require('./service') as typeof import('./service');
}

/** The `tsagent service` command with its two subcommands, for main.ts to register. */
export function serviceCommand(io: Io): Command {
  const service = new Command('service').description('install or remove the systemd user units (socket activation)');
  const dirOptions = (cmd: Command): Command =>
    cmd
      .option('--dir <dir>', 'unit directory (default: $XDG_CONFIG_HOME/systemd/user, i.e. ~/.config/systemd/user)')
      .option('--env-dir <dir>', 'environment.d directory (default: $XDG_CONFIG_HOME/environment.d)')
      .option(
        '--shell-profile [file]',
        "install: append the SSH_AUTH_SOCK line for ssh and console logins to this profile (default: your login shell's); uninstall: look in it too",
      )
      .exitOverride()
      .configureOutput({ writeOut: io.out, writeErr: io.err })
      .showHelpAfterError();
  service.addCommand(
    dirOptions(new Command('install'))
      .description(
        'write tsagent.socket, tsagent-control.socket, tsagent.service and environment.d/tsagent.conf; print the systemctl lines',
      )
      .action((flags: ServiceFlags) => impl().installService(flags, io)),
  );
  service.addCommand(
    dirOptions(new Command('uninstall'))
      .description('remove the files and profile lines install wrote; print the systemctl lines')
      .action((flags: ServiceFlags) => impl().uninstallService(flags, io)),
  );
  return service.exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err }).showHelpAfterError();
}
