/**
 * `npm run build`, second step: bundles the CLI and the PKCS#11 helper, each into one file,
 * from tsc's CommonJS output (so every module keeps Node's require semantics: a `require`
 * inside a function still loads that module only when it runs).
 *
 * Why: resolving and reading ~80 files cost a good part of a ~150 ms start (issue 16). The
 * bundle sits at dist/bundle/cli/, as deep as dist/src/cli/, so paths that code computes from
 * __dirname (the package root, the helper script next to it) hold for both.
 * koffi stays outside: it loads its native binary from its own folder.
 *
 * The two large dependencies that no start needs, sshpk (key files, certificates: ~320 KB
 * with its own dependencies) and @homebridge/dbus-native (prompts: ~210 KB), are bundled
 * each into a file of their own beside the CLI bundle, which requires it on first use. Every
 * start read, decoded and kept those 530 KB of source in the heap for nothing.
 *
 * node:crypto is required on first use too (lazyBuiltins): compiling it and the ~20 internal
 * modules it pulls in is 6–10 ms of every start, and the agent needs it only once a key is
 * added or a connection is bound. (node:child_process would not gain: net's listen() loads
 * the cluster module, which requires it.)
 */
import { build } from 'esbuild';
import type { Plugin } from 'esbuild';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
export const BUNDLE_DIR = join(ROOT, 'dist', 'bundle', 'cli');

/** Dependencies bundled apart, by the file name of their bundle (in BUNDLE_DIR). */
const APART: Readonly<Record<string, string>> = {
  sshpk: 'dep-sshpk',
  '@homebridge/dbus-native': 'dep-dbus-native',
};

/** Resolves each APART dependency to a require of its own bundle, next to the requiring one. */
const requireApart: Plugin = {
  name: 'require-apart',
  setup(build) {
    const names = Object.keys(APART).map((n) => n.replace(/[/.]/g, '\\$&'));
    build.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => {
      // The dependency's own bundle is built from its package, not from itself.
      if (args.kind === 'entry-point') return undefined;
      return { path: `./${APART[args.path]}.js`, external: true };
    });
  },
};

/** Node built-ins the bundled code requires on first use, not at load. */
const LAZY_BUILTINS = ['crypto'];

/**
 * `require("node:NAME")` in the bundled code becomes a stand-in that requires the module on
 * its first property access and forwards every access after. The code reads a module's
 * functions as properties at each call (tsc's CommonJS output: `(0, node_crypto_1.sign)(…)`),
 * so one proxy trap per call is the whole cost: 15–20 ns, against a signature's 20–50 µs.
 */
function standIn(name: string): string {
  return `let real;
const load = () => (real ??= require("node:${name}"));
module.exports = new Proxy({}, {
  get: (_, key) => load()[key],
  has: (_, key) => key in load(),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, key) => {
    const d = Reflect.getOwnPropertyDescriptor(load(), key);
    return d === undefined ? undefined : { ...d, configurable: true };
  },
});
`;
}

const lazyBuiltins: Plugin = {
  name: 'lazy-builtins',
  setup(build) {
    // With or without the node: prefix (tweetnacl says crypto).
    build.onResolve({ filter: new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`) }, (args) => {
      const name = args.path.replace(/^node:/, '');
      // The stand-in's own require is the real module.
      return args.namespace === 'lazy-builtin'
        ? { path: `node:${name}`, external: true }
        : { path: name, namespace: 'lazy-builtin' };
    });
    build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: standIn(args.path), loader: 'js' }));
  },
};

export async function bundle(): Promise<void> {
  const apart = Object.fromEntries(Object.entries(APART).map(([pkg, file]) => [file, require.resolve(pkg)]));
  await build({
    entryPoints: {
      tsagent: join(ROOT, 'dist/src/cli/main.js'),
      'helper-main': join(ROOT, 'dist/src/pkcs11/helper-main.js'),
      // Started by path from __dirname (policy/decrypt.ts): it must sit beside the bundle.
      'decrypt-thread': join(ROOT, 'dist/src/policy/decrypt-thread.js'),
      ...apart,
    },
    outdir: BUNDLE_DIR,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['koffi', 'pino'],
    plugins: [requireApart, lazyBuiltins],
    // Names stay readable in stack traces and profiles; whitespace goes (less to parse).
    minifyWhitespace: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
}

if (require.main === module) {
  bundle().catch(() => {
    // esbuild has printed the errors.
    process.exit(1);
  });
}
