/**
 * The PKCS#11 (Cryptoki) calls the helper makes, through koffi: the module is dlopen'ed,
 * C_GetFunctionList gives the function table, and each call goes through its pointer.
 * Synchronous on purpose: this runs only in the provider helper process (helper-main.ts),
 * never in the agent, so a token that blocks delays nothing but its own helper.
 *
 * Memory: every buffer handed to the module is a Node Buffer whose address koffi gives
 * (`koffi.address`); the Buffers are kept referenced for the length of the call.
 */
import { Pkcs11Error } from '../errors';
import { loadKoffi } from '../native/koffi-loader';
import type { Koffi } from '../native/koffi-loader';
import { CKR, CK_UNAVAILABLE, FN, TOKEN_INFO_FLAGS_OFFSET, TOKEN_INFO_SIZE } from './constants';

/** CK_ATTRIBUTE on LP64: type (8), pValue (8), ulValueLen (8). */
const ATTRIBUTE_SIZE = 24;
/** CK_MECHANISM on LP64: mechanism (8), pParameter (8), ulParameterLen (8). */
const MECHANISM_SIZE = 24;

export interface TokenInfo {
  /** CK_TOKEN_INFO.label, trailing blanks removed. */
  readonly label: string;
  readonly flags: number;
}

/** An attribute to read: its value, or undefined when the object does not have it. */
export type AttributeValues = Map<number, Buffer | undefined>;

export class Cryptoki {
  private readonly fns: readonly bigint[];
  private readonly protos: Record<string, ReturnType<Koffi['proto']>>;

  private constructor(
    private readonly koffi: Koffi,
    functionList: unknown,
  ) {
    // CK_FUNCTION_LIST: CK_VERSION (2 bytes, padded to pointer alignment), then pointers.
    this.fns = koffi.decode(functionList, 8, koffi.array('void *', FN.C_Sign + 1)) as bigint[];
    const p = (decl: string): ReturnType<Koffi['proto']> => koffi.proto(decl);
    this.protos = {
      C_Initialize: p('unsigned long tsagent_C_Initialize(void *args)'),
      C_Finalize: p('unsigned long tsagent_C_Finalize(void *reserved)'),
      C_GetSlotList: p('unsigned long tsagent_C_GetSlotList(uint8_t present, void *slots, _Inout_ unsigned long *count)'),
      C_GetTokenInfo: p('unsigned long tsagent_C_GetTokenInfo(unsigned long slot, void *info)'),
      C_OpenSession: p(
        'unsigned long tsagent_C_OpenSession(unsigned long slot, unsigned long flags, void *app, void *notify, _Out_ unsigned long *session)',
      ),
      C_CloseSession: p('unsigned long tsagent_C_CloseSession(unsigned long session)'),
      C_Login: p('unsigned long tsagent_C_Login(unsigned long session, unsigned long user, void *pin, unsigned long len)'),
      C_GetAttributeValue: p(
        'unsigned long tsagent_C_GetAttributeValue(unsigned long session, unsigned long obj, void *tmpl, unsigned long n)',
      ),
      C_FindObjectsInit: p('unsigned long tsagent_C_FindObjectsInit(unsigned long session, void *tmpl, unsigned long n)'),
      C_FindObjects: p(
        'unsigned long tsagent_C_FindObjects(unsigned long session, _Out_ unsigned long *obj, unsigned long max, _Out_ unsigned long *count)',
      ),
      C_FindObjectsFinal: p('unsigned long tsagent_C_FindObjectsFinal(unsigned long session)'),
      C_SignInit: p('unsigned long tsagent_C_SignInit(unsigned long session, void *mechanism, unsigned long key)'),
      C_Sign: p(
        'unsigned long tsagent_C_Sign(unsigned long session, void *data, unsigned long len, void *sig, _Inout_ unsigned long *siglen)',
      ),
    };
  }

  /** dlopen()s the module and fetches its function list; throws when it is not a PKCS#11 module. */
  static open(path: string): Cryptoki {
    // The struct layouts below are LP64's; Windows (LLP64, packed PKCS#11 structs) differs.
    if (process.platform === 'win32') throw new Pkcs11Error('C_GetFunctionList (unsupported platform)', -1);
    const { koffi } = loadKoffi();
    const lib = koffi.load(path);
    const getFunctionList = lib.func('unsigned long C_GetFunctionList(_Out_ void **list)');
    const out: unknown[] = [null];
    const rv = Number(getFunctionList(out));
    if (rv !== CKR.OK || out[0] === null) throw new Pkcs11Error('C_GetFunctionList', rv);
    return new Cryptoki(koffi, out[0]);
  }

  private call(name: keyof typeof FN, ...args: unknown[]): number {
    const fn = this.fns[FN[name]];
    if (fn === undefined || fn === 0n) throw new Pkcs11Error(name, -1);
    return Number(this.koffi.call(fn, this.protos[name], ...args));
  }

  private check(name: keyof typeof FN, ...args: unknown[]): void {
    const rv = this.call(name, ...args);
    if (rv !== CKR.OK) throw new Pkcs11Error(name, rv);
  }

  private address(b: Buffer): bigint {
    return this.koffi.address(b);
  }

  initialize(): void {
    const rv = this.call('C_Initialize', null);
    if (rv !== CKR.OK && rv !== CKR.CRYPTOKI_ALREADY_INITIALIZED) throw new Pkcs11Error('C_Initialize', rv);
  }

  finalize(): void {
    this.call('C_Finalize', null);
  }

  /** Slots with a token present. */
  slots(): bigint[] {
    const count = [0];
    this.check('C_GetSlotList', 1, null, count);
    if (count[0] === 0) return [];
    const list = Buffer.alloc(8 * count[0]);
    this.check('C_GetSlotList', 1, list, count);
    const out: bigint[] = [];
    for (let i = 0; i < count[0]; i++) out.push(list.readBigUInt64LE(8 * i));
    return out;
  }

  tokenInfo(slot: bigint): TokenInfo {
    const info = Buffer.alloc(TOKEN_INFO_SIZE);
    this.check('C_GetTokenInfo', slot, info);
    return {
      label: info
        .subarray(0, 32)
        .toString('utf8')
        .replace(/[ \0]+$/, ''),
      flags: Number(info.readBigUInt64LE(TOKEN_INFO_FLAGS_OFFSET)),
    };
  }

  openSession(slot: bigint, flags: number): bigint {
    const out = [0n];
    this.check('C_OpenSession', slot, flags, null, null, out);
    return BigInt(out[0]);
  }

  closeSession(session: bigint): void {
    this.call('C_CloseSession', session);
  }

  /** C_Login; returns the CK_RV (the caller decides what counts as success). */
  login(session: bigint, user: number, pin: Buffer): number {
    return this.call('C_Login', session, user, pin.length === 0 ? null : pin, pin.length);
  }

  /** Object handles matching a template of CK_ULONG-valued attributes (CKA_CLASS, …) and byte ones. */
  findObjects(session: bigint, template: ReadonlyArray<readonly [number, Buffer]>): bigint[] {
    const { tmpl, keep } = this.template(template);
    this.check('C_FindObjectsInit', session, tmpl, template.length);
    void keep;
    const out: bigint[] = [];
    try {
      for (;;) {
        const obj = [0n];
        const n = [0];
        this.check('C_FindObjects', session, obj, 1, n);
        if (n[0] === 0) break;
        out.push(BigInt(obj[0]));
      }
    } finally {
      this.call('C_FindObjectsFinal', session);
    }
    return out;
  }

  /** Reads attributes (two calls: sizes, then values); absent ones map to undefined. */
  attributes(session: bigint, obj: bigint, types: readonly number[]): AttributeValues {
    const tmpl = Buffer.alloc(ATTRIBUTE_SIZE * types.length);
    types.forEach((t, i) => tmpl.writeBigUInt64LE(BigInt(t), ATTRIBUTE_SIZE * i));
    // Sizes first: a module answers CKR_ATTRIBUTE_TYPE_INVALID/SENSITIVE for some and still
    // fills the rest, marking those with CK_UNAVAILABLE_INFORMATION.
    this.call('C_GetAttributeValue', session, obj, tmpl, types.length);
    const values: Array<Buffer | undefined> = types.map((_, i) => {
      const len = tmpl.readBigUInt64LE(ATTRIBUTE_SIZE * i + 16);
      if (len === CK_UNAVAILABLE || len > 1n << 20n) return undefined;
      return Buffer.alloc(Number(len));
    });
    values.forEach((v, i) => {
      const at = ATTRIBUTE_SIZE * i;
      tmpl.writeBigUInt64LE(v === undefined || v.length === 0 ? 0n : this.address(v), at + 8);
      tmpl.writeBigUInt64LE(BigInt(v?.length ?? 0), at + 16);
    });
    this.call('C_GetAttributeValue', session, obj, tmpl, types.length);
    const out: AttributeValues = new Map();
    values.forEach((v, i) => {
      const len = tmpl.readBigUInt64LE(ATTRIBUTE_SIZE * i + 16);
      out.set(types[i], v === undefined || len === CK_UNAVAILABLE ? undefined : v.subarray(0, Number(len)));
    });
    return out;
  }

  /** C_SignInit + C_Sign with a parameterless mechanism. */
  sign(session: bigint, key: bigint, mechanism: number, data: Buffer, maxSignature: number): Buffer {
    const mech = Buffer.alloc(MECHANISM_SIZE);
    mech.writeBigUInt64LE(BigInt(mechanism), 0);
    this.check('C_SignInit', session, mech, key);
    const sig = Buffer.alloc(maxSignature);
    const len = [maxSignature];
    this.check('C_Sign', session, data, data.length, sig, len);
    return sig.subarray(0, len[0]);
  }

  private template(attrs: ReadonlyArray<readonly [number, Buffer]>): { tmpl: Buffer; keep: Buffer[] } {
    const tmpl = Buffer.alloc(ATTRIBUTE_SIZE * attrs.length);
    const keep: Buffer[] = [];
    attrs.forEach(([type, value], i) => {
      const at = ATTRIBUTE_SIZE * i;
      tmpl.writeBigUInt64LE(BigInt(type), at);
      tmpl.writeBigUInt64LE(value.length === 0 ? 0n : this.address(value), at + 8);
      tmpl.writeBigUInt64LE(BigInt(value.length), at + 16);
      keep.push(value);
    });
    return { tmpl, keep };
  }
}

/** A CK_ULONG attribute value (CKA_CLASS, CKA_KEY_TYPE…) as template bytes. */
export function ulong(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}

/** A CK_BBOOL attribute value. */
export function bool(v: boolean): Buffer {
  return Buffer.from([v ? 1 : 0]);
}

/** Reads a CK_ULONG attribute value. */
export function readUlong(v: Buffer | undefined): number | undefined {
  return v === undefined || v.length !== 8 ? undefined : Number(v.readBigUInt64LE(0));
}
