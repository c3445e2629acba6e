/**
 * Merged into ./keys.ts, the one key-fixture helper. These aliases only keep branches written
 * against this file compiling; delete the file once they are merged.
 */
import * as keys from './keys';

/** @deprecated Import `testKey` from './keys'. */
export const testKey = keys.testKey;
/** @deprecated Import `certifiedKey` from './keys'. */
export const certifiedKey = keys.certifiedKey;
/** @deprecated Import `publicBlobOf` from './keys'. */
export const publicBlobOf = keys.publicBlobOf;
/** @deprecated Import `TestKey` from './keys'. */
export type TestKey = keys.TestKey;
/** @deprecated Import `TestKeyType` from './keys'. */
export type TestKeyType = keys.TestKeyType;
