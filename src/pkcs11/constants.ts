/**
 * The few PKCS#11 v2.40 numbers tsagent uses (OASIS PKCS#11 Base Specification; the values
 * are the standard's, as every pkcs11.h spells them). CK_ULONG is `unsigned long`: 64 bits
 * on the LP64 platforms (Linux, macOS) the helper runs on.
 */
export const CKR = {
  OK: 0x0,
  PIN_INCORRECT: 0xa0,
  PIN_LEN_RANGE: 0xa2,
  PIN_LOCKED: 0xa4,
  USER_ALREADY_LOGGED_IN: 0x100,
  BUFFER_TOO_SMALL: 0x150,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
} as const;

export const CKF = {
  /** CK_TOKEN_INFO.flags */
  LOGIN_REQUIRED: 1 << 2,
  PROTECTED_AUTHENTICATION_PATH: 1 << 8,
  TOKEN_INITIALIZED: 1 << 10,
  /** C_OpenSession flags */
  RW_SESSION: 1 << 1,
  SERIAL_SESSION: 1 << 2,
} as const;

export const CKU_USER = 1;

export const CKO = { CERTIFICATE: 1, PUBLIC_KEY: 2, PRIVATE_KEY: 3 } as const;
export const CKK = { RSA: 0, EC: 3 } as const;
export const CKC_X_509 = 0;

export const CKA = {
  CLASS: 0x0,
  LABEL: 0x3,
  VALUE: 0x11,
  CERTIFICATE_TYPE: 0x80,
  KEY_TYPE: 0x100,
  ID: 0x102,
  SIGN: 0x108,
  MODULUS: 0x120,
  PUBLIC_EXPONENT: 0x122,
  EC_PARAMS: 0x180,
  EC_POINT: 0x181,
} as const;

export const CKM = { RSA_PKCS: 0x1, ECDSA: 0x1041 } as const;

/** CK_ULONG's "unavailable information" (~0): an attribute the object does not have. */
export const CK_UNAVAILABLE = 0xffffffffffffffffn;

/**
 * Positions in CK_FUNCTION_LIST after its CK_VERSION (v2.40 order; every v2.x module and
 * v3.0's CK_FUNCTION_LIST keep it).
 */
export const FN = {
  C_Initialize: 0,
  C_Finalize: 1,
  C_GetSlotList: 4,
  C_GetTokenInfo: 6,
  C_OpenSession: 12,
  C_CloseSession: 13,
  C_Login: 18,
  C_GetAttributeValue: 24,
  C_FindObjectsInit: 26,
  C_FindObjects: 27,
  C_FindObjectsFinal: 28,
  C_SignInit: 42,
  C_Sign: 43,
} as const;

/** CK_TOKEN_INFO: label[32] at 0, flags (CK_ULONG) at 96; the struct is 208 bytes on LP64. */
export const TOKEN_INFO_SIZE = 208;
export const TOKEN_INFO_FLAGS_OFFSET = 96;
