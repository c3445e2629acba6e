/**
 * Smartcard (PKCS#11) keys as the keyring sees them: what a loaded provider offers and the
 * port that loads one. The keyring never touches a token: it holds, per identity, an
 * external signer that asks the provider (a helper process, see src/pkcs11/) to sign.
 * OpenSSH: ssh-agent.c process_add_smartcard_key / process_remove_smartcard_key.
 */
import { AgentFailureError, ConstraintError, ProtocolError } from '../errors';
import { keysEqual, parsedKey } from '../keys/key-equality';
import type { Constraint } from '../protocol/constraints';
import { SshReader } from '../protocol/wire';

/** One key found on a provider's tokens. */
export interface ProviderKey {
  /** The plain public key blob. */
  readonly blob: Buffer;
  /** The object's CKA_LABEL (certificates: their subject); may be empty. */
  readonly label: string;
}

/** A provider loaded and logged in: its keys, and signatures by them. */
export interface LoadedProvider {
  /** The canonical (realpath'd) module path. */
  readonly path: string;
  readonly keys: readonly ProviderKey[];
  /** The SSH signature blob by the key `blob` (a ProviderKey blob) over `data`. */
  sign(blob: Buffer, data: Buffer, flags: number): Promise<Buffer>;
  /** Unloads the provider (ends its helper). Idempotent. */
  close(): void;
  /** `listener` runs once if the provider goes away by itself (its helper crashed). */
  onLost(listener: () => void): void;
}

/** What the keyring asks of the PKCS#11 layer (implemented by src/pkcs11/provider-host.ts). */
export interface SmartcardPort {
  /** realpath(3) of the provider; throws AgentFailureError when it does not resolve. */
  canonicalPath(provider: string): Promise<string>;
  /** `tsagent start -P`: true when the canonical path is in the allowlist. */
  allowed(canonicalPath: string): boolean;
  /**
   * Loads the provider and logs in to each token with `pin` (one C_Login per token).
   * Throws AgentFailureError when nothing could be loaded (wrong PIN, no keys...).
   * `pin` is only read; the caller zeroes it.
   */
  load(canonicalPath: string, pin: Buffer): Promise<LoadedProvider>;
  /** OpenSSH `-O allow-remote-pkcs11`: providers may be added over forwarded connections. */
  readonly allowRemoteAdd: boolean;
}

export interface SmartcardConstraints {
  readonly lifetimeSeconds: number | undefined;
  readonly confirm: boolean;
  /** restrict-destination-v00@openssh.com, undecoded: the keyring reads it as for any key. */
  readonly destination: Extract<Constraint, { type: 'restrict-destination' }> | undefined;
  /** associated-certs-v00@openssh.com: certificate blobs to add beside the token's keys. */
  readonly certs: readonly Buffer[];
  /** …and only them, not the plain keys. */
  readonly certsOnly: boolean;
}

/** OpenSSH AGENT_MAX_EXT_CERTS. */
const MAX_ASSOCIATED_CERTS = 1024;

function splitCerts(raw: Buffer): Buffer[] {
  const r = new SshReader(raw);
  const out: Buffer[] = [];
  while (!r.atEnd) {
    if (out.length >= MAX_ASSOCIATED_CERTS) throw new ConstraintError('too many associated certificates');
    out.push(Buffer.from(r.string()));
  }
  return out;
}

/**
 * The constraints of ADD_SMARTCARD_KEY_CONSTRAINED, as parse_key_constraints() allows them
 * there: lifetime, confirm, destination and associated certificates; sk-provider is refused.
 * Duplicates were already refused by the codec.
 */
export function smartcardConstraints(constraints: readonly Constraint[]): SmartcardConstraints {
  let lifetimeSeconds: number | undefined;
  let confirm = false;
  let destination: SmartcardConstraints['destination'];
  let certs: Buffer[] = [];
  let certsOnly = false;
  for (const c of constraints) {
    switch (c.type) {
      case 'lifetime':
        lifetimeSeconds = c.seconds;
        break;
      case 'confirm':
        confirm = true;
        break;
      case 'restrict-destination':
        destination = c;
        break;
      case 'associated-certs':
        try {
          certs = splitCerts(c.certs);
        } catch (err) {
          if (err instanceof ProtocolError) throw new ConstraintError('malformed associated certificates');
          throw err;
        }
        certsOnly = c.certsOnly;
        break;
      case 'sk-provider':
        throw new ConstraintError('sk-provider is not valid for smartcard keys');
    }
  }
  return { lifetimeSeconds, confirm, destination, certs, certsOnly };
}

/** One identity to add for a provider: its blob, comment, and the token key that signs. */
export interface SmartcardIdentity {
  readonly blob: Buffer;
  readonly comment: string;
  /** The plain key blob the provider signs with (differs from `blob` for a certificate). */
  readonly signingBlob: Buffer;
}

/**
 * The identities a provider's keys yield, in OpenSSH's order: for each key, first the
 * associated certificates that certify it, then the key itself unless certsOnly. An empty
 * label becomes the provider path (ssh-agent.c).
 */
export function smartcardIdentities(provider: LoadedProvider, c: SmartcardConstraints): SmartcardIdentity[] {
  const parsedCerts = c.certs.flatMap((blob) => {
    try {
      const p = parsedKey(blob);
      return p.key.kind === 'certificate' ? [p] : [];
    } catch {
      return [];
    }
  });
  const out: SmartcardIdentity[] = [];
  for (const k of provider.keys) {
    const comment = k.label === '' ? provider.path : k.label;
    const plain = parsedKey(k.blob);
    for (const cert of parsedCerts) {
      if (keysEqual(cert, plain)) out.push({ blob: cert.blob, comment, signingBlob: k.blob });
    }
    if (!c.certsOnly) out.push({ blob: k.blob, comment, signingBlob: k.blob });
  }
  return out;
}

/**
 * The providers loaded into one keyring, and how many identities each still backs: when
 * the last identity of a provider leaves the keyring (removed, expired, remove-all), the
 * provider is unloaded, as OpenSSH ≥ 9.4 ends the helper whose last key is freed.
 */
export class ProviderTable {
  private readonly providers = new Map<string, { provider: LoadedProvider | undefined; refs: number }>();

  /** Claims `path` before the (slow) load, so a second add of it fails at once. */
  reserve(path: string): void {
    if (this.providers.has(path)) throw new AgentFailureError('provider already added');
    this.providers.set(path, { provider: undefined, refs: 0 });
  }

  /** The load finished: the provider backs `refs` identities (0: it is unloaded now). */
  settle(path: string, provider: LoadedProvider | undefined, refs: number): void {
    if (provider === undefined || refs === 0) {
      this.providers.delete(path);
      provider?.close();
      return;
    }
    this.providers.set(path, { provider, refs });
  }

  /** One identity of `path` left the keyring. */
  release(path: string): void {
    const p = this.providers.get(path);
    if (p === undefined || p.provider === undefined) return;
    if (--p.refs > 0) return;
    this.providers.delete(path);
    p.provider.close();
  }

  /** Unloads `path` whatever its identities (their entries are being removed). */
  drop(path: string): boolean {
    const p = this.providers.get(path);
    if (p === undefined || p.provider === undefined) return false;
    this.providers.delete(path);
    p.provider.close();
    return true;
  }

  /** Is `provider` still the one loaded for its path (not dropped, not replaced)? */
  current(provider: LoadedProvider): boolean {
    return this.providers.get(provider.path)?.provider === provider;
  }

  closeAll(): void {
    for (const p of this.providers.values()) p.provider?.close();
    this.providers.clear();
  }
}
