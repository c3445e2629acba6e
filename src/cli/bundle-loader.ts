/**
 * Loads the bundled CLI (dist/bundle/cli/tsagent.js) the way Node loads a CommonJS file, but
 * through vm.Script so that V8's code cache for it can be used: Node 20 has no compile cache
 * of its own, and compiling the bundle was a large part of what remained of the start after
 * bundling (issue 16). The cache (`<bundle>.cache`) is written by `npm run build`
 * (tools/code-cache.ts) after running the start path once; V8 rejects it by itself when it
 * was made by another V8 version or with other flags, and the bundle is then compiled as usual.
 */
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

export interface LoadedBundle {
  readonly exports: unknown;
  readonly script: Script;
  /** True when there was a cache file and V8 did not accept it. */
  readonly cacheRejected: boolean;
}

/**
 * V8 flags the daemon runs with, set before anything is compiled (the code cache records
 * the flags it was made with). A young generation that never grows past its initial 1 MiB
 * semispaces: the agent's garbage is small and short-lived, and the default growth to 16 MiB
 * semispaces kept ~30 MB of RSS for nothing after a burst of requests (issue 16).
 */
export const V8_FLAGS = ['--semi-space-growth-factor=1'];

export function cacheFileOf(bundleFile: string): string {
  return `${bundleFile}.cache`;
}

export function loadBundle(file: string, useCache = true): LoadedBundle {
  const source = readFileSync(file, 'utf8');
  let cachedData: Buffer | undefined;
  if (useCache) {
    try {
      cachedData = readFileSync(cacheFileOf(file));
    } catch {
      /* no cache: compile as usual */
    }
  }
  const wrapper = (Module as unknown as { wrap(src: string): string }).wrap(source);
  const script = new Script(wrapper, { filename: file, ...(cachedData === undefined ? {} : { cachedData }) });
  const mod = { exports: {} as unknown, filename: file, id: file, loaded: false };
  const fn = script.runInThisContext() as (e: unknown, r: NodeRequire, m: unknown, f: string, d: string) => void;
  fn.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  mod.loaded = true;
  return { exports: mod.exports, script, cacheRejected: cachedData !== undefined && script.cachedDataRejected === true };
}
