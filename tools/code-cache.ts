/**
 * `npm run build`, last step: writes V8's code cache for the bundled CLI
 * (dist/bundle/cli/tsagent.js.cache, see src/cli/bundle-loader.ts). The cache holds the
 * functions compiled so far, so the start path is run once first: `tsagent start -a SOCK
 * node -e 0` (command mode: the agent starts on a temp socket, runs the command, stops).
 * Runs in its own process, with the daemon's V8 flags set before anything is compiled.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { V8_FLAGS, cacheFileOf, loadBundle } from '../src/cli/bundle-loader';
import { BUNDLE_DIR } from './bundle';

type Main = (argv: readonly string[], io: object) => Promise<void>;

function writeCache(): void {
  for (const f of V8_FLAGS) setFlagsFromString(f);
  const file = join(BUNDLE_DIR, 'tsagent.js');
  const loaded = loadBundle(file, false);
  const { main } = loaded.exports as { main: Main };
  const dir = mkdtempSync(join(tmpdir(), 'tsagent-cc-'));
  const done = (code: number): void => {
    rmSync(dir, { recursive: true, force: true });
    if (code !== 0) {
      process.stderr.write(`code-cache: the start path exited ${code}; no cache written\n`);
      process.exit(1);
    }
    writeFileSync(cacheFileOf(file), loaded.script.createCachedData());
    process.exit(0);
  };
  const io = {
    out: () => undefined,
    err: (s: string) => void process.stderr.write(s),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
    exit: done,
    script: file,
  };
  main([process.execPath, file, 'start', '-a', join(dir, 'agent.sock'), process.execPath, '-e', '0'], io).catch(
    (err: unknown) => {
      process.stderr.write(`code-cache: ${err instanceof Error ? err.message : String(err)}\n`);
      done(1);
    },
  );
}

if (require.main === module) writeCache();
