// Hard limits of the memberlist wire protocol (memberlist 0.2.2 values, see the protocol doc 2.8).

/** Largest UDP datagram we accept or build (memberlist's receive buffer). */
export const MAX_UDP_PACKET = 65536;
/** Largest stream message we accept (memberlist `maxPushStateBytes`); also caps LZW output. */
export const MAX_STREAM_BYTES = 20 * 1024 * 1024;
/** Largest node meta (Serf tags) memberlist allows (`MetaMaxSize`). */
export const META_MAX_SIZE = 512;
/** `07` + part count byte. */
export const COMPOUND_HEADER_OVERHEAD = 2;
/** uint16 length per compound part. */
export const COMPOUND_PART_OVERHEAD = 2;
/** vsn byte + 12-byte nonce + 16-byte GCM tag (encryption version 1). */
export const ENCRYPT_OVERHEAD = 29;
/** The `08` user-message type byte in front of a Serf message. */
export const USER_MSG_OVERHEAD = 1;
/** The compound part count is one byte. */
export const MAX_COMPOUND_PARTS = 255;
/** How many compound/compress layers a packet may nest before we refuse it (Go has no limit,
 *  but never nests more than compress(compound(...)) in practice). */
export const MAX_NESTING = 4;
/** Deepest msgpack container nesting we decode; Serf's deepest structure is 4 levels. */
export const MAX_MSGPACK_DEPTH = 32;
/** Cap on what one compressed UDP payload may expand to. Go has none, but a sender only
 *  compresses what would otherwise be one datagram; 1 MiB leaves room and stops LZW bombs. */
export const MAX_PACKET_DECOMPRESSED = 1024 * 1024;
