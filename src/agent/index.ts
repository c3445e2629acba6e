export * from './agent';
export * from './confirm';
export * from './dispatcher';
export * from './extensions';
export * from './keyring';
export * from './passphrase-lock';
export * from './destination-policy';
export * from './session';
