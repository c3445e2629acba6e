export * from './fingerprint';
export * from './held-key';
export * from './import-private';
export * from './sign';
export * from './verify';
export * from './key-file';
export * from './certificate';
export * from './key-equality';
