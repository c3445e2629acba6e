/**
 * The `tsagent` command line (commander). `tsagent start` takes ssh-agent's options.
 */
import { Command, CommanderError, Option } from 'commander';
import { AgentError } from '../errors';
import { logCommand } from './log';
import { approvalCommands } from './approval-commands';
import { controlCommands } from './control-commands';
import { serviceCommand } from './service-command';
import { start } from './start';
import type { Io, StartFlags } from './start';

function version(): string {
  // dist/src/cli/main.js -> package.json at the package root
  return (require('../../../package.json') as { version: string }).version;
}

export function buildProgram(io: Io): Command {
  const program = new Command('tsagent')
    .description("An ssh-agent in TypeScript: a drop-in replacement for OpenSSH's ssh-agent")
    .version(version(), '-V, --version')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  program
    .command('start')
    .description('start the agent (same options as ssh-agent); prints the shell commands that set SSH_AUTH_SOCK')
    .usage(
      '[-c | -s] [-Dd] [-a bind_address] [-E fingerprint_hash] [-O option] [-P allowed_providers] [-t life] [command [arg ...]]\n       tsagent start [-c | -s] -k',
    )
    .option('-a <bind_address>', 'listen on this Unix socket path (or \\\\.\\pipe\\NAME on Windows)')
    .option('-c', 'print C-shell commands')
    .option('-s', 'print Bourne shell commands')
    .option('-D', 'foreground mode: do not fork, log to stderr')
    .option('-d', 'debug mode: foreground, debug logging to stderr')
    .option('-E <fingerprint_hash>', 'fingerprint hash in prompts and logs: sha256 (default) or md5')
    .option('-k', 'kill the agent named by $SSH_AGENT_PID')
    .option('-t <life>', 'default lifetime of added keys (seconds, or 1h30m style)')
    .option(
      '-P <allowed_providers>',
      'pattern-list of PKCS#11 provider paths ssh-add -s may load (default "/usr/lib*/*,/usr/local/lib*/*")',
    )
    .option(
      '-O <option>',
      'agent option: allow-remote-pkcs11 (others of ssh-agent are accepted and ignored)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--config <file>', 'the configuration file (default: $XDG_CONFIG_HOME/tsagent/config.toml)')
    .addOption(new Option('--daemon-child').hideHelp())
    .addOption(new Option('--owned-dir <dir>').hideHelp())
    .addOption(new Option('--dir-created').hideHelp())
    .addOption(new Option('--inherited-sockets').hideHelp())
    .addOption(new Option('--arena-limit-set').hideHelp())
    .argument('[command...]', 'run this command with SSH_AUTH_SOCK and SSH_AGENT_PID set; stop the agent when it exits')
    .passThroughOptions()
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError()
    .action(async (command: string[], flags: StartFlags) => {
      await start(flags, command, io);
    });

  program.addCommand(serviceCommand(io));
  program.addCommand(logCommand(io));
  for (const c of controlCommands(io)) program.addCommand(c);
  for (const c of approvalCommands(io)) program.addCommand(c);

  return program;
}

/** Runs the CLI; resolves once the command has done its synchronous part. */
export async function main(argv: readonly string[], io: Io): Promise<void> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'node' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version "fail" with exit code 0.
      io.exit(err.exitCode === 0 ? 0 : 1);
      return;
    }
    if (err instanceof AgentError) {
      io.err(`tsagent: ${err.message}\n`);
      if (err.code === 'USAGE') io.err(program.commands[0].helpInformation());
      io.exit(1);
      return;
    }
    throw err;
  }
}
