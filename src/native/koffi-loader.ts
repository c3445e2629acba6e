/**
 * Loads koffi, the FFI the agent's few libc calls (and the PKCS#11 helper) go through, by the
 * shortest path there is. `require('koffi')` costs 10–15 ms of every start (issue 16): its
 * package "exports" pull in Node's ESM resolver, its loader parses the ELF header of the node
 * binary to tell glibc from musl, and its wrapper loads node:util for deprecation shims the
 * agent never calls. The native module itself loads in ~3 ms. So on glibc Linux (x64, arm64)
 * the platform package's binary is dlopen()ed directly, once its version matches the one its
 * package.json declares; anything else (another layout, musl, another OS, a mismatch) falls
 * back to `require('koffi')`, which is always right and only slower. The agent uses only
 * the native API (load, func, struct, proto, array, decode, call, address), which the binary
 * exports as is.
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
    // The platform package has no "exports": plain resolution, no ESM resolver.
    const manifest = require.resolve(`@koromix/koffi-linux-${process.arch}/package.json`);
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version?: unknown };
    const mod = { exports: {} as { version?: unknown } };
    process.dlopen(mod, join(dirname(manifest), `linux_${process.arch}`, 'koffi.node'));
    // koffi's loader makes the same check: a binary of another version is not the API we know.
    return typeof version === 'string' && mod.exports.version === version ? (mod.exports as unknown as Koffi) : undefined;
  } catch {
    return undefined;
  }
}
