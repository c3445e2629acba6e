/**
 * Askpass programs for approval tests: each records its prompt argument and
 * SSH_ASKPASS_PROMPT in DIR/prompt.PID and DIR/mode.PID, then approves (`yes`, exit 0),
 * denies (`no`, exit 1) or waits to be killed (`wait`, exec sleep 600: the pid stays the
 * same, so the test can check that it was killed by pid). Removed after the test.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { removeDir, tempDir } from './proc';

export interface AskpassScripts {
  readonly dir: string;
  readonly yes: string;
  readonly no: string;
  readonly wait: string;
}

export async function askpassScripts(t: TestContext): Promise<AskpassScripts> {
  const dir = await tempDir('tsagent-askpass-');
  t.after(() => removeDir(dir));
  const head = [
    '#!/bin/sh',
    'd=$(dirname "$0")',
    `printf '%s' "$1" > "$d/prompt.$$"`,
    `printf '%s' "$SSH_ASKPASS_PROMPT" > "$d/mode.$$"`,
  ];
  const scripts = { yes: [...head, 'exit 0'], no: [...head, 'exit 1'], wait: [...head, 'exec sleep 600'] };
  const out = { dir, yes: '', no: '', wait: '' };
  for (const [name, lines] of Object.entries(scripts)) {
    const path = join(dir, `askpass-${name}`);
    await writeFile(path, `${lines.join('\n')}\n`);
    await chmod(path, 0o700);
    out[name as 'yes' | 'no' | 'wait'] = path;
  }
  return out;
}
