/**
 * `npm run build`, second step: bundles the CLI and the PKCS#11 helper, each into one file,
 * from tsc's CommonJS output (so every module keeps Node's require semantics: a `require`
 * inside a function still loads that module only when it runs).
 *
 * Why: resolving and reading ~80 files cost a good part of a ~150 ms start (issue 16). The
 * bundle sits at dist/bundle/cli/, as deep as dist/src/cli/, so paths that code computes from
 * __dirname (the package root, the helper script next to it) hold for both.
 * koffi stays outside: it loads its native binary from its own folder.
 */
import { buildSync } from 'esbuild';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
export const BUNDLE_DIR = join(ROOT, 'dist', 'bundle', 'cli');

export function bundle(): void {
  buildSync({
    entryPoints: {
      tsagent: join(ROOT, 'dist/src/cli/main.js'),
      'helper-main': join(ROOT, 'dist/src/pkcs11/helper-main.js'),
      // Started by path from __dirname (policy/decrypt.ts): it must sit beside the bundle.
      'decrypt-thread': join(ROOT, 'dist/src/policy/decrypt-thread.js'),
    },
    outdir: BUNDLE_DIR,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['koffi', 'pino'],
    // Names stay readable in stack traces and profiles; whitespace goes (less to parse).
    minifyWhitespace: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
}

if (require.main === module) bundle();
