/**
 * SSH_AUTH_SOCK for ssh and console logins. environment.d(5) reaches only what the systemd
 * user manager starts (graphical sessions, services); a login shell started by sshd or
 * login(1) reads its profile instead. `tsagent service install` prints one line per shell
 * family for that profile and, with --shell-profile, appends it below a marker comment;
 * `tsagent service uninstall` removes every marked line it finds.
 *
 * The line sets SSH_AUTH_SOCK only when it is unset (so `ssh -A` forwarding and a desktop's
 * own agent keep working) and tsagent's socket exists (so a disabled tsagent.socket changes
 * nothing).
 */
import { appendFileSync, mkdirSync, realpathSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ServiceError } from '../errors';
import { configHome } from './service-locations';
import { errno, readExisting, writeAtomically } from './service-files';

export type ShellFamily = 'sh' | 'fish' | 'csh';

/** The comment above the line; uninstall finds the line by it. */
export const PROFILE_MARKER =
  '# tsagent: SSH_AUTH_SOCK for ssh and console logins ("tsagent service uninstall" removes this and the next line)';

const SOCKET = '$XDG_RUNTIME_DIR/tsagent/agent.sock';

/** The line for each shell family (sh covers bash, zsh, dash, ksh). */
export const PROFILE_LINES: Readonly<Record<ShellFamily, string>> = {
  sh: `if [ -z "\${SSH_AUTH_SOCK:-}" ] && [ -S "\${XDG_RUNTIME_DIR:-}/tsagent/agent.sock" ]; then export SSH_AUTH_SOCK="${SOCKET}"; fi`,
  fish: `if not set -q SSH_AUTH_SOCK; and test -S "${SOCKET}"; set -gx SSH_AUTH_SOCK "${SOCKET}"; end`,
  // csh expands every variable of a line before it runs it: the inner eval keeps an unset
  // XDG_RUNTIME_DIR from being an error.
  csh: `if ( $?XDG_RUNTIME_DIR && ! $?SSH_AUTH_SOCK ) eval 'if ( -S "${SOCKET}" ) setenv SSH_AUTH_SOCK "${SOCKET}"'`,
};

/** The shell family a profile file is written in, from its name. */
export function familyOf(file: string): ShellFamily {
  const name = basename(file);
  if (name.endsWith('.fish')) return 'fish';
  if (['.login', '.cshrc', '.tcshrc'].includes(name)) return 'csh';
  return 'sh';
}

/** The fish snippet file (fish reads every conf.d file at start). */
function fishFile(env: NodeJS.ProcessEnv): string {
  return join(configHome(env), 'fish', 'conf.d', 'tsagent.fish');
}

function home(env: NodeJS.ProcessEnv): string {
  const h = env.HOME;
  if (h === undefined || !h.startsWith('/')) throw new ServiceError('cannot find your profile: HOME is not an absolute path');
  return h;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The profile a login shell of the user's $SHELL reads: bash the first of ~/.bash_profile,
 * ~/.bash_login, ~/.profile that exists (bash(1), INVOCATION); zsh ~/.zprofile; fish a conf.d
 * file; csh/tcsh ~/.login; any other shell ~/.profile.
 */
export function defaultProfile(env: NodeJS.ProcessEnv): string {
  const h = home(env);
  switch (basename(env.SHELL ?? '')) {
    case 'bash':
      return ['.bash_profile', '.bash_login'].map((f) => join(h, f)).find(exists) ?? join(h, '.profile');
    case 'zsh':
      return join(h, '.zprofile');
    case 'fish':
      return fishFile(env);
    case 'csh':
    case 'tcsh':
      return join(h, '.login');
    default:
      return join(h, '.profile');
  }
}

/** Every file uninstall looks in for the marker. */
export function profileCandidates(env: NodeJS.ProcessEnv): string[] {
  const h = home(env);
  const names = [
    '.profile',
    '.bash_profile',
    '.bash_login',
    '.bashrc',
    '.zprofile',
    '.zshenv',
    '.zshrc',
    '.login',
    '.cshrc',
    '.tcshrc',
  ];
  const files = names.map((n) => join(h, n));
  try {
    files.push(fishFile(env));
  } catch {
    /* no config directory: no fish file either */
  }
  return files;
}

/** `text` with the marked line appended, or undefined when it already has the marker. */
export function withProfileLine(text: string, family: ShellFamily): string | undefined {
  if (text.split('\n').includes(PROFILE_MARKER)) return undefined;
  const sep = text === '' || text.endsWith('\n') ? '' : '\n';
  return `${text}${sep}${PROFILE_MARKER}\n${PROFILE_LINES[family]}\n`;
}

/** `text` without the marker lines and the line after each (when it is one of ours). */
export function withoutProfileLine(text: string): { readonly text: string; readonly removed: number } {
  const ours = new Set(Object.values(PROFILE_LINES));
  const lines = text.split('\n');
  const kept: string[] = [];
  let removed = 0;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === PROFILE_MARKER && ours.has(lines[i + 1] ?? '')) {
      i++;
      removed++;
      continue;
    }
    kept.push(lines[i]);
  }
  return { text: kept.join('\n'), removed };
}

/** Appends the marked line to `file` (created if missing); returns the report line. */
export function addProfileLine(file: string): string {
  const text = readExisting(file) ?? '';
  const next = withProfileLine(text, familyOf(file));
  if (next === undefined) return `unchanged ${file}`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    // Append, not rewrite: the file is the user's (and may be a symlink into a dotfiles repo).
    appendFileSync(file, next.slice(text.length), { mode: 0o644 });
  } catch (err) {
    throw new ServiceError(`cannot write ${file}: ${errno(err)}`, { cause: err });
  }
  return `added the SSH_AUTH_SOCK line to ${file}`;
}

/**
 * Removes the marked lines from `file`, keeping its mode and writing through a symlink to
 * the file it names. A file that holds nothing else and is tsagent's own (the fish conf.d
 * snippet) is deleted. Returns the report line, or undefined when there was nothing to do.
 */
export function removeProfileLine(file: string): string | undefined {
  const text = readExisting(file);
  if (text === undefined) return undefined;
  const { text: rest, removed } = withoutProfileLine(text);
  if (removed === 0) return undefined;
  const real = realpathSync(file);
  if (rest.trim() === '' && basename(real) === 'tsagent.fish') {
    unlinkSync(real);
    return `removed ${file}`;
  }
  writeAtomically(real, rest, statSync(real).mode & 0o7777);
  return `removed the SSH_AUTH_SOCK line from ${file}`;
}
