/**
 * A key held by an agent: paramiko's `AgentKey` in TypeScript. The public half is here
 * (type, blob, bits, fingerprints, verification); signing goes to the agent that holds the
 * private half.
 */
import sshpk from 'sshpk';
import type { Agent } from '../agent/agent';
import { AgentSession } from '../agent/session';
import { AgentProtocolError, UnsupportedKeyError, UsageError } from '../errors';
import { fingerprint } from '../keys/fingerprint';
import type { FingerprintHash } from '../keys/fingerprint';
import { verifySignature } from '../keys/verify';
import type { Identity } from '../protocol/messages';
import { CERT_SUFFIX, plainAlgorithm, signatureAlgorithm } from '../protocol/algorithms';
import { encodePlainPublicKey, parsePublicKeyBlob, plainKeyOf } from '../protocol/public-key';
import type { PublicKey } from '../protocol/public-key';
import { SshReader, mpintToUnsigned } from '../protocol/wire';
import { assertCertifies, readCertificate } from './certificate-source';

/** Signature algorithms for RSA keys (RFC 8332); other key types have exactly one. */
export type RsaSignatureAlgorithm = 'rsa-sha2-256' | 'rsa-sha2-512' | 'ssh-rsa';

export interface SignOptions {
  /** RSA only (ignored for other keys, as agents ignore the flags): default `rsa-sha2-512`. */
  readonly algorithm?: RsaSignatureAlgorithm;
}

/** FIDO key types have fixed sizes (what `ssh-keygen -l` prints); we keep them as opaque blobs. */
const OPAQUE_BITS: Readonly<Record<string, number>> = {
  'sk-ssh-ed25519@openssh.com': 256,
  'sk-ecdsa-sha2-nistp256@openssh.com': 256,
};

function bitsOf(key: PublicKey): number {
  const plain = plainKeyOf(key);
  if (plain === undefined) return OPAQUE_BITS[key.type.replace(CERT_SUFFIX, '@openssh.com')] ?? 0;
  switch (plain.kind) {
    case 'ed25519':
      return 256;
    case 'ecdsa':
      return plainAlgorithm(plain.type)!.bits!;
    case 'rsa': {
      const n = mpintToUnsigned(plain.n);
      return n.length === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]));
    }
  }
}

export class AgentKey {
  /** Key type name as on the wire, e.g. `ssh-ed25519`, `ssh-rsa-cert-v01@openssh.com`. */
  readonly type: string;
  readonly comment: string;
  /** The public key (or certificate) blob, RFC 4253 §6.6. */
  readonly blob: Buffer;
  /** The agent holding the private half. */
  readonly agent: Agent;
  /** Number of significant bits, as `ssh-keygen -l` prints it (0 for a type we do not know). */
  readonly bits: number;
  private readonly parsed: PublicKey;
  /** The plain key: `blob` itself, or the key a certificate certifies. */
  private readonly plainBlob: Buffer;
  private readonly signingBlob: Buffer;
  /** An unbound session for an in-process agent (a Keyring); a socket client ignores it. */
  private readonly session = AgentSession.inProcess();

  /**
   * @param identity a blob and comment as the agent listed them (copied)
   * @param signingBlob the identity the agent signs with, when it differs from `blob`
   *   (a certificate attached by loadCertificate signs through its plain key)
   * @throws ProtocolError when the blob is not a well-formed public key blob
   */
  constructor(agent: Agent, identity: Identity, signingBlob?: Buffer) {
    this.agent = agent;
    this.blob = Buffer.from(identity.blob);
    this.comment = identity.comment;
    this.parsed = parsePublicKeyBlob(this.blob);
    this.type = this.parsed.type;
    this.bits = bitsOf(this.parsed);
    this.plainBlob = this.parsed.kind === 'certificate' ? encodePlainPublicKey(this.parsed.key) : this.blob;
    this.signingBlob = signingBlob ?? this.blob;
  }

  /** True: the agent holds the private half (paramiko's `can_sign`). */
  canSign(): boolean {
    return true;
  }

  /** The blob in base64, the middle field of an authorized_keys line. */
  get base64(): string {
    return this.blob.toString('base64');
  }

  /** The `authorized_keys` / `.pub` line: `type base64 comment`. */
  toString(): string {
    return this.comment === '' ? `${this.type} ${this.base64}` : `${this.type} ${this.base64} ${this.comment}`;
  }

  /**
   * `SHA256:<base64>` or `MD5:xx:xx:…`, exactly as `ssh-keygen -l -E sha256|md5` prints it.
   * A certificate's fingerprint is its certified key's (OpenSSH sshkey_fingerprint hashes the
   * plain key), so a key and its certificate identity share one fingerprint.
   */
  fingerprint(hash: FingerprintHash = 'sha256'): string {
    return fingerprint(this.plainBlob, hash);
  }

  /** True for RSA keys and RSA certificates (the only ones with a choice of algorithm). */
  private get isRsa(): boolean {
    return plainKeyOf(this.parsed)?.kind === 'rsa';
  }

  /**
   * Asks the agent to sign `data`; returns the SSH signature blob `string algorithm, string
   * bytes` (RFC 4253 §6.6). RSA keys sign with `rsa-sha2-512` unless `algorithm` says
   * otherwise; an agent that answers with another algorithm than asked (old agents ignore
   * the flags and fall back to SHA-1) is refused with AgentProtocolError.
   */
  async sign(data: Buffer, options: SignOptions = {}): Promise<Buffer> {
    const algorithm = options.algorithm ?? 'rsa-sha2-512';
    // The SIGN_REQUEST flag per RSA algorithm (RFC 9987 §5.6.1) is in the algorithm table.
    const rsaSignature = signatureAlgorithm(algorithm);
    if (rsaSignature?.algorithm.kind !== 'rsa') throw new UsageError(`unknown signature algorithm ${String(algorithm)}`);
    const rsa = this.isRsa;
    const signature = await this.agent.sign(this.signingBlob, data, rsa ? rsaSignature.signature.flag : 0, this.session);
    if (rsa) {
      let answered: string;
      try {
        answered = new SshReader(signature).text();
      } catch (err) {
        throw new AgentProtocolError('agent returned a malformed signature', undefined, undefined, { cause: err });
      }
      if (answered !== algorithm) throw new AgentProtocolError(`agent signed with ${answered}, not the ${algorithm} asked for`);
    }
    return signature;
  }

  /** paramiko's `verify_ssh_sig`: true when `signature` (an SSH signature blob) signs `data` with this key. */
  verify(data: Buffer, signature: Buffer): boolean {
    return verifySignature(this.blob, data, signature);
  }

  /**
   * paramiko's `load_certificate`: this key with its certificate (a `-cert.pub` path, or the
   * contents of one) becomes a certificate identity. It signs through this key, so it works
   * whether or not the agent also holds the certificate.
   */
  loadCertificate(pathOrContents: string): AgentKey {
    const cert = readCertificate(pathOrContents);
    assertCertifies(cert, this.blob);
    return new AgentKey(this.agent, { blob: cert, comment: this.comment }, this.signingBlob);
  }

  /** The `sshpk` Key for this key (for a certificate: its certified key). */
  toSshpk(): sshpk.Key {
    let key: sshpk.Key;
    try {
      key = sshpk.parseKey(this.plainBlob, 'rfc4253');
    } catch (err) {
      throw new UnsupportedKeyError(`sshpk cannot represent ${this.type} keys`, { cause: err });
    }
    key.comment = this.comment;
    return key;
  }
}
