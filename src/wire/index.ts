// Public surface of the wire layer: bytes in, bytes out, no I/O, no clock.
//   msgpack.ts   go-msgpack 0.5.5 compatible encoders (gossip / RPC) and a liberal decoder
//   messages.ts  memberlist messages (type byte + Go struct) <-> Message
//   packet.ts    UDP datagrams: compound, compress (lzw.ts), hasCrc (crc32.ts), encryption
//   stream.ts    TCP stream messages: framing on any prefix, compress, encrypt (AAD = header)
//   keyring.ts + security.ts   AES-GCM keys and sealing (vsn 0 and 1)
// Every failure is a WireError with a stable `code` (errors.ts); limits live in limits.ts.
// Note: on a stream, a `user` message carries a {UserMsgLen} header — build it with
// encodeStreamMessage(), not encodeMessage(), before encodeStream().
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
