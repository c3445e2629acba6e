/**
 * The README's "Use it from Node" example runs as written: its code block is copied into a
 * temp directory where `require('tsagent')` resolves to this package (through
 * node_modules/tsagent → the repository, i.e. package.json `main`: dist/src/index.js), and
 * run by node against a tsagent daemon holding a key added with the real ssh-add.
 */
import assert from 'node:assert/strict';
import { readFileSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { startAgentDaemon } from '../helpers/daemons';
import { generateKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, removeDir, run, runOk, tempDir } from '../helpers/proc';

const ROOT = resolve(__dirname, '../../..');

function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use it from Node'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(readme.includes('## Use it from Node') && m, 'README has the section and its js example');
  return m[1];
}

describe('README: Use it from Node', () => {
  it('the example is at most 10 lines and runs as written against tsagent', async (t) => {
    const bin = requirePeers(t, ['ssh-add', 'ssh-keygen'] as const);
    if (bin === undefined) return;
    const code = readmeExample();
    assert.ok(code.trimEnd().split('\n').length <= 10, 'a 10-line example');

    const dir = await tempDir('tsagent-readme-');
    const daemon = await startAgentDaemon('tsagent');
    t.after(async () => {
      await daemon.stop();
      await removeDir(dir);
    });
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'tsagent'), 'dir');
    writeFileSync(join(dir, 'example.js'), code);
    const key = await generateKey(dir, 'ed25519', 'readme-key');
    const env = cleanEnv({ SSH_AUTH_SOCK: daemon.socketPath });
    await runOk(bin['ssh-add'], [key.privatePath], { env });

    const r = await run(process.execPath, ['example.js'], { cwd: dir, env, timeoutMs: 15_000 });
    assert.equal(r.code, 0, r.stderr);
    const listed = (await runOk(bin['ssh-add'], ['-l'], { env })).stdout.trim().replace(/ \(ED25519\)$/, '');
    assert.equal(r.stdout.trim(), `${listed} true`);

    // With no agent the same code prints nothing and succeeds.
    const none = await run(process.execPath, ['example.js'], { cwd: dir, env: cleanEnv(), timeoutMs: 15_000 });
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, '');
  });
});
