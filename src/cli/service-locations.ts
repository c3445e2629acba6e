/**
 * Where `tsagent service install|uninstall` reads its templates and writes its files: the
 * user unit directory (`$XDG_CONFIG_HOME/systemd/user`, default `~/.config/systemd/user`),
 * the environment.d directory next to it, and this package's systemd/ folder.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { ServiceError } from '../errors';

export interface ServiceDirs {
  /** Where the .socket and .service units go. */
  readonly unitDir: string;
  /** Where the environment.d snippet goes. */
  readonly envDir: string;
  /** The unit directory systemd's user manager searches (undefined: no HOME to find it). */
  readonly defaultUnitDir: string | undefined;
}

/** One file to install: a template in the package and the place it is written to. */
export interface ServiceFile {
  readonly template: string;
  readonly target: string;
}

/** The package root: dist/src/cli/ -> ../../.. */
export const PACKAGE_ROOT = resolve(__dirname, '../../..');
export const TSAGENT_JS = join(PACKAGE_ROOT, 'bin', 'tsagent.js');
const TEMPLATES = join(PACKAGE_ROOT, 'systemd');

/** `$XDG_CONFIG_HOME` when set to an absolute path (the XDG spec ignores others), else `$HOME/.config`. */
export function configHome(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return xdg;
  const home = env.HOME;
  if (home === undefined || !isAbsolute(home)) {
    throw new ServiceError('cannot find the configuration directory: neither XDG_CONFIG_HOME nor HOME is an absolute path');
  }
  return join(home, '.config');
}

export function serviceDirs(opts: { readonly dir?: string; readonly envDir?: string }, env: NodeJS.ProcessEnv): ServiceDirs {
  let config: string | undefined;
  let missing: ServiceError | undefined;
  try {
    config = configHome(env);
  } catch (err) {
    if (!(err instanceof ServiceError)) throw err;
    missing = err;
  }
  const underConfig = (...parts: string[]): string => {
    if (config === undefined) throw missing ?? new ServiceError('no configuration directory');
    return join(config, ...parts);
  };
  const defaultUnitDir = config === undefined ? undefined : join(config, 'systemd', 'user');
  return {
    unitDir: opts.dir === undefined ? underConfig('systemd', 'user') : resolve(opts.dir),
    envDir: opts.envDir === undefined ? underConfig('environment.d') : resolve(opts.envDir),
    defaultUnitDir,
  };
}

/** The four files, in install order. */
export function serviceFiles(dirs: ServiceDirs): readonly ServiceFile[] {
  return [
    { template: join(TEMPLATES, 'tsagent.socket'), target: join(dirs.unitDir, 'tsagent.socket') },
    { template: join(TEMPLATES, 'tsagent-control.socket'), target: join(dirs.unitDir, 'tsagent-control.socket') },
    { template: join(TEMPLATES, 'tsagent.service'), target: join(dirs.unitDir, 'tsagent.service') },
    { template: join(TEMPLATES, 'environment.d', 'tsagent.conf'), target: envFile(dirs) },
  ];
}

/** The environment.d snippet that sets SSH_AUTH_SOCK. */
export function envFile(dirs: ServiceDirs): string {
  return join(dirs.envDir, 'tsagent.conf');
}

/** The symlink `systemctl --user enable tsagent.socket` makes (WantedBy=sockets.target). */
export function enableLink(dirs: ServiceDirs): string {
  return join(dirs.unitDir, 'sockets.target.wants', 'tsagent.socket');
}
