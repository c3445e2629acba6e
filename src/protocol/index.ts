/** The ssh-agent wire protocol: shared by the daemon and the client. No I/O. */
export * from './wire';
export * from './messages';
export * from './algorithms';
export * from './private-key';
export * from './public-key';
export * from './constraints';
export * from './codec';
export * from './frame';
export * from './destination';
export * from './session-bind';
export * from './userauth';
export * from './query';
