/**
 * A loaded provider inside the helper: logs in to each token once and turns its RSA and
 * ECDSA objects into SSH keys, then signs with them. Mirrors OpenSSH's ssh-pkcs11.c
 * (pkcs11_register_provider, pkcs11_fetch_keys, pkcs11_fetch_certs, pkcs11_sign_rsa/ecdsa):
 * public-key objects first, then X.509 certificate objects, the first of equal keys winning;
 * the private key is found by CKA_ID at signing time.
 */
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { Pkcs11Error } from '../errors';
import { OCTET_STRING, readTlv } from '../keys/der-reader';
import type { Tlv } from '../keys/der-reader';
import { ecdsaSignatureFromP1363 } from '../keys/ecdsa-signature';
import { signatureBlob } from '../keys/sign';
import { ECDSA_TYPES, ecdsaAlgorithmByCurveOid, plainAlgorithm, signatureFor } from '../protocol/algorithms';
import type { Curve, HashName, KeyAlgorithm } from '../protocol/algorithms';
import { encodePlainPublicKey } from '../protocol/public-key';
import { mpintFromUnsigned } from '../protocol/wire';
import { CKA, CKC_X_509, CKF, CKK, CKM, CKO, CKR, CKU_USER } from './constants';
import { Cryptoki, bool, readUlong, ulong } from './cryptoki';

/** OpenSSH SSH_RSA_MINIMUM_MODULUS_SIZE. */
const RSA_MIN_BITS = 1024;

/** RFC 8017 §9.2 note 1: the DER DigestInfo prefix before the hash, per hash. */
const DIGEST_INFO_PREFIX: Readonly<Partial<Record<HashName, Buffer>>> = {
  sha1: Buffer.from('3021300906052b0e03021a05000414', 'hex'),
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

const ECDSA_ALGORITHMS: readonly KeyAlgorithm[] = ECDSA_TYPES.map((t) => plainAlgorithm(t)!);

interface RecordedKey {
  readonly blob: Buffer;
  readonly label: string;
  readonly session: bigint;
  readonly id: Buffer;
  readonly rsaBytes?: number;
  /** ECDSA keys: the key's row in the algorithm table. */
  readonly ecdsa?: KeyAlgorithm;
}

export interface LoadOutcome {
  readonly keys: ReadonlyArray<{ readonly blob: Buffer; readonly label: string }>;
  /** Why tokens gave nothing (for the agent's debug log; never secret). */
  readonly problems: readonly string[];
}

const b64u = (b: Buffer): string => b.toString('base64url');

/** A DER OCTET STRING's contents (CKA_EC_POINT), or the value itself when it is a bare point. */
function ecPoint(value: Buffer, curve: Curve): Buffer | undefined {
  const bare = 1 + 2 * curve.fieldBytes;
  if (value.length === bare && value[0] === 0x04) return value;
  let t: Tlv;
  try {
    t = readTlv(value, 0, value.length);
  } catch {
    return undefined;
  }
  if (t.tag !== OCTET_STRING || t.end !== value.length || t.end - t.start !== bare) return undefined;
  return value.subarray(t.start);
}

function ecdsaBlob(algorithm: KeyAlgorithm, point: Buffer): Buffer | undefined {
  const curve = algorithm.curve!;
  // createPublicKey checks the point is on the curve (sshkey_ec_validate_public).
  try {
    const x = point.subarray(1, 1 + curve.fieldBytes);
    const y = point.subarray(1 + curve.fieldBytes);
    createPublicKey({ key: { kty: 'EC', crv: curve.jwk, x: b64u(x), y: b64u(y) }, format: 'jwk' });
  } catch {
    return undefined;
  }
  const type = algorithm.name as (typeof ECDSA_TYPES)[number];
  return encodePlainPublicKey({ kind: 'ecdsa', type, curve: curve.sshName, point: Buffer.from(point) });
}

function rsaBlob(n: Buffer, e: Buffer): Buffer {
  return encodePlainPublicKey({ kind: 'rsa', type: 'ssh-rsa', e: mpintFromUnsigned(e), n: mpintFromUnsigned(n) });
}

function bitLength(magnitude: Buffer): number {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  return i === magnitude.length ? 0 : (magnitude.length - i - 1) * 8 + magnitude[i].toString(2).length;
}

/** OpenSSH labels a certificate identity with X509_NAME_oneline(subject): `/C=…/CN=…`. */
function subjectOneline(cert: X509Certificate): string {
  return cert.subject
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => `/${l}`)
    .join('');
}

function labelText(v: Buffer | undefined): string {
  if (v === undefined) return '';
  const nul = v.indexOf(0);
  return (nul < 0 ? v : v.subarray(0, nul)).subarray(0, 255).toString('utf8');
}

export class TokenKeys {
  private readonly keys: RecordedKey[] = [];
  private readonly sessions: bigint[] = [];

  private constructor(private readonly ck: Cryptoki) {}

  /**
   * Opens the module, and for every initialised token: a session, one C_Login with `pin`
   * when the token wants one (an empty PIN: no attempt), then its keys. A token whose login
   * fails is skipped; the others still count (pkcs11_register_provider).
   */
  static load(path: string, pin: Buffer): { tokens: TokenKeys; outcome: LoadOutcome } {
    const ck = Cryptoki.open(path);
    ck.initialize();
    const tokens = new TokenKeys(ck);
    const problems: string[] = [];
    for (const slot of ck.slots()) {
      try {
        tokens.loadSlot(slot, pin, problems);
      } catch (err) {
        problems.push(err instanceof Pkcs11Error ? err.message : 'token error');
      }
    }
    return { tokens, outcome: { keys: tokens.keys.map((k) => ({ blob: k.blob, label: k.label })), problems } };
  }

  private loadSlot(slot: bigint, pin: Buffer, problems: string[]): void {
    const info = this.ck.tokenInfo(slot);
    if ((info.flags & CKF.TOKEN_INITIALIZED) === 0) return;
    const loginRequired = (info.flags & CKF.LOGIN_REQUIRED) !== 0;
    if (loginRequired && pin.length === 0) {
      problems.push(`token "${info.label}": PIN required`);
      return;
    }
    const session = this.ck.openSession(slot, CKF.RW_SESSION | CKF.SERIAL_SESSION);
    if (loginRequired) {
      const rv = this.ck.login(session, CKU_USER, pin);
      if (rv !== CKR.OK && rv !== CKR.USER_ALREADY_LOGGED_IN) {
        this.ck.closeSession(session);
        problems.push(`token "${info.label}": C_Login failed: CKR 0x${rv.toString(16)}`);
        return;
      }
    }
    this.sessions.push(session);
    for (const obj of this.ck.findObjects(session, [[CKA.CLASS, ulong(CKO.PUBLIC_KEY)]])) this.publicKeyObject(session, obj);
    for (const obj of this.ck.findObjects(session, [[CKA.CLASS, ulong(CKO.CERTIFICATE)]])) this.certificateObject(session, obj);
  }

  private record(k: RecordedKey): void {
    if (this.keys.some((e) => e.blob.equals(k.blob))) return; // first of equal keys wins
    this.keys.push(k);
  }

  private publicKeyObject(session: bigint, obj: bigint): void {
    const a = this.ck.attributes(session, obj, [CKA.KEY_TYPE, CKA.LABEL, CKA.ID]);
    const keyType = readUlong(a.get(CKA.KEY_TYPE));
    const label = labelText(a.get(CKA.LABEL));
    const id = Buffer.from(a.get(CKA.ID) ?? Buffer.alloc(0));
    if (keyType === CKK.RSA) {
      const v = this.ck.attributes(session, obj, [CKA.MODULUS, CKA.PUBLIC_EXPONENT]);
      const n = v.get(CKA.MODULUS);
      const e = v.get(CKA.PUBLIC_EXPONENT);
      if (n === undefined || e === undefined || n.length === 0 || e.length === 0) return;
      const bits = bitLength(n);
      if (bits < RSA_MIN_BITS) return;
      this.record({ blob: rsaBlob(n, e), label, session, id, rsaBytes: Math.ceil(bits / 8) });
    } else if (keyType === CKK.EC) {
      const v = this.ck.attributes(session, obj, [CKA.EC_PARAMS, CKA.EC_POINT]);
      // CKA_EC_PARAMS holds the DER of the named curve's OID (RFC 5480 §2.1.1.1).
      const params = v.get(CKA.EC_PARAMS);
      const ecdsa = params === undefined ? undefined : ecdsaAlgorithmByCurveOid(params);
      const raw = v.get(CKA.EC_POINT);
      if (ecdsa === undefined || raw === undefined) return;
      const point = ecPoint(raw, ecdsa.curve!);
      const blob = point === undefined ? undefined : ecdsaBlob(ecdsa, point);
      if (blob !== undefined) this.record({ blob, label, session, id, ecdsa });
    }
  }

  private certificateObject(session: bigint, obj: bigint): void {
    const a = this.ck.attributes(session, obj, [CKA.CERTIFICATE_TYPE, CKA.ID, CKA.VALUE]);
    const der = a.get(CKA.VALUE);
    if (readUlong(a.get(CKA.CERTIFICATE_TYPE)) !== CKC_X_509 || der === undefined || der.length === 0) return;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch {
      return;
    }
    const id = Buffer.from(a.get(CKA.ID) ?? Buffer.alloc(0));
    const label = subjectOneline(cert);
    const jwk = cert.publicKey.export({ format: 'jwk' });
    if (jwk.kty === 'RSA' && jwk.n !== undefined && jwk.e !== undefined) {
      const n = Buffer.from(jwk.n, 'base64url');
      const bits = bitLength(n);
      if (bits < RSA_MIN_BITS) return;
      this.record({ blob: rsaBlob(n, Buffer.from(jwk.e, 'base64url')), label, session, id, rsaBytes: Math.ceil(bits / 8) });
    } else if (jwk.kty === 'EC' && jwk.x !== undefined && jwk.y !== undefined) {
      const ecdsa = ECDSA_ALGORITHMS.find((a) => a.curve!.jwk === jwk.crv);
      if (ecdsa === undefined) return;
      const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
      const blob = ecdsaBlob(ecdsa, point);
      if (blob !== undefined) this.record({ blob, label, session, id, ecdsa });
    }
  }

  /** The private key object for a recorded key: CKA_ID and CKA_SIGN, else CKA_ID alone. */
  private privateKey(k: RecordedKey): bigint {
    const base: Array<[number, Buffer]> = [
      [CKA.CLASS, ulong(CKO.PRIVATE_KEY)],
      [CKA.ID, k.id],
    ];
    const found = this.ck.findObjects(k.session, [...base, [CKA.SIGN, bool(true)]]);
    const objs = found.length > 0 ? found : this.ck.findObjects(k.session, base);
    if (objs.length === 0) throw new Pkcs11Error('C_FindObjects (private key)', CKR.OK);
    return objs[0];
  }

  /** The SSH signature blob over `data` by the key `blob`, or undefined for a key not on these tokens. */
  sign(blob: Buffer, data: Buffer, flags: number): Buffer | undefined {
    const k = this.keys.find((e) => e.blob.equals(blob));
    if (k === undefined) return undefined;
    const key = this.privateKey(k);
    if (k.ecdsa !== undefined) {
      const sig = k.ecdsa.signatures[0];
      const { fieldBytes } = k.ecdsa.curve!;
      const digest = createHash(sig.hash!).update(data).digest();
      // CKM_ECDSA returns r || s (PKCS#11 §2.3.1), each padded to the field size.
      const raw = this.ck.sign(k.session, key, CKM.ECDSA, digest, 2 * fieldBytes);
      if (raw.length !== 2 * fieldBytes) throw new Pkcs11Error('C_Sign (ECDSA length)', CKR.OK);
      return signatureBlob(sig.name, ecdsaSignatureFromP1363(raw));
    }
    const alg = signatureFor(plainAlgorithm('ssh-rsa')!, flags);
    const hash = alg.hash!;
    const digestInfo = Buffer.concat([DIGEST_INFO_PREFIX[hash]!, createHash(hash).update(data).digest()]);
    const len = k.rsaBytes!;
    const raw = this.ck.sign(k.session, key, CKM.RSA_PKCS, digestInfo, len);
    if (raw.length > len) throw new Pkcs11Error('C_Sign (RSA length)', CKR.OK);
    // An RSA signature is exactly as long as the modulus (RFC 8017 §8.2.1): left-pad.
    const sig = raw.length === len ? raw : Buffer.concat([Buffer.alloc(len - raw.length), raw]);
    return signatureBlob(alg.name, sig);
  }

  /** Closes the sessions and finalizes the module. */
  close(): void {
    for (const s of this.sessions) this.ck.closeSession(s);
    this.sessions.length = 0;
    this.ck.finalize();
  }
}
