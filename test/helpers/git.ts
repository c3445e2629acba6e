/**
 * git's arguments for a signed empty commit in `repo` with SSH signing (gpg.format=ssh),
 * the way `git commit -S` reaches the agent through `ssh-keygen -Y sign -n git`.
 */
export function signedCommitArgs(repo: string, signingKeyPublicPath: string): string[] {
  return [
    '-C',
    repo,
    '-c',
    'user.name=T',
    '-c',
    'user.email=t@example.com',
    '-c',
    'gpg.format=ssh',
    '-c',
    `user.signingkey=${signingKeyPublicPath}`,
    'commit',
    '-q',
    '-S',
    '--allow-empty',
    '-m',
    'signed',
  ];
}
