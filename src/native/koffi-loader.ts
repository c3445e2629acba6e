/**
 * Loads koffi, the FFI the agent's few libc calls (and the PKCS#11 helper) go through, by the
 * shortest path there is. `require('koffi')` costs 10–15 ms of every start (issue 16): its
 * package "exports" pull in Node's ESM resolver, its loader parses the ELF header of the node
 * binary to tell glibc from musl, and its wrapper loads node:util for deprecation shims the
 * agent never calls. The native module itself loads in ~3 ms. So on glibc Linux (x64, arm64)
 * the platform package's binary, beside koffi where koffi's loader looks for it, is dlopen()ed
 * directly once it and its package have koffi's version (koffi's loader checks the same).
 * Anything else (another layout, musl, another OS, a mismatch) falls back to
 * `require('koffi')`, which is always right and only slower. The agent uses only the native
 * API (load, func, struct, proto, array, decode, call, address), which the binary exports
 * as is.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type Koffi = typeof import('koffi');

export interface LoadedKoffi {
  readonly koffi: Koffi;
  /** Whether the native module was loaded directly (the fast path) or through the package. */
  readonly direct: boolean;
}

let loaded: LoadedKoffi | undefined;

/** koffi, loaded once per process. Throws what `require('koffi')` throws when it is missing. */
export function loadKoffi(): LoadedKoffi {
  if (loaded !== undefined) return loaded;
  const koffi = nativeKoffi();
  loaded = koffi === undefined ? { koffi: require('koffi') as Koffi, direct: false } : { koffi, direct: true };
  return loaded;
}

/** The binary koffi's own loader would pick on glibc Linux, or undefined to let it choose. */
function nativeKoffi(): Koffi | undefined {
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) return undefined;
  try {
    // A musl build lives beside the glibc one: where musl's loader is installed, let koffi
    // tell which one this process runs on (a glibc system with musl too only loses time).
    if (existsSync(`/lib/ld-musl-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`)) return undefined;
    const koffiDir = packageDir('koffi', require.resolve.paths('koffi') ?? []);
    if (koffiDir === undefined) return undefined;
    // The version koffi's loader checks the binary against: koffi's own.
    const version = versionOf(koffiDir);
    // Its platform package, where koffi's loader looks: beside koffi in the same node_modules.
    const platformDir = join(dirname(koffiDir), '@koromix', `koffi-linux-${process.arch}`);
    if (version === undefined || !existsSync(join(platformDir, 'package.json')) || versionOf(platformDir) !== version)
      return undefined;
    const mod = { exports: {} as { version?: unknown } };
    process.dlopen(mod, join(platformDir, `linux_${process.arch}`, 'koffi.node'));
    return mod.exports.version === version ? (mod.exports as unknown as Koffi) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The first `node_modules/NAME` among `dirs` that has a package.json: Node's resolution order,
 * without its "exports" handling (koffi's hides its package.json and costs the ESM resolver).
 */
function packageDir(name: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
  }
  return undefined;
}

function versionOf(dir: string): string | undefined {
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown };
  return typeof version === 'string' ? version : undefined;
}
