// Public surface of the wire layer: msgpack, memberlist messages, packet/stream framing, keyring.
export * from './types.ts';
export * from './errors.ts';
export * from './limits.ts';
export * from './addr.ts';
export * from './msgpack.ts';
export * from './messages.ts';
export * from './keyring.ts';
export * from './security.ts';
export * from './crc32.ts';
export * from './lzw.ts';
export * from './compress.ts';
export * from './packet.ts';
export * from './stream.ts';
