// TCP stream messages (protocol doc 3.1–3.5). A stream carries one message each way with no
// overall length for plain/compressed forms, so the reader must find where a message ends by
// parsing it: streamFrameLength does that on any prefix of the bytes received so far.
//   plain:      type | body          (ping/ack/err: one msgpack object; pushPull: header, Nodes
//                                     node states, UserStateLen raw bytes; user: {UserMsgLen} + raw)
//   compressed: 09 | msgpack({Algo, Buf})          Buf inflates to a plain message
//   encrypted:  0a | len:uint32 | vsn | nonce | GCM(plain or compressed message), AAD = first 5 bytes

import { compressMessage, decompressAt } from './compress.ts';
import { WireError } from './errors.ts';
import type { Keyring } from './keyring.ts';
import { MAX_STREAM_BYTES } from './limits.ts';
import { decodeMessage, decodePushPullHeader, encodeMessage, nodeStateEnd, readObject } from './messages.ts';
import { asInt, asMap, decodeMsgpackPrefix, encodeGossipAfter, skipMsgpackPrefix, type DecodeOptions } from './msgpack.ts';
import { decryptPayload, encryptPayload, encryptedLength } from './security.ts';
import type { SealOptions } from './packet.ts';
import { MessageType, type Message } from './types.ts';

const HEADER = 5;
const NONCE_SIZE = 12;

/** Plain stream form of a message; differs from the packet form only for `user`, which on a
 *  stream carries an explicit length header. */
export function encodeStreamMessage(msg: Message): Uint8Array {
  if (msg.type !== 'user') return encodeMessage(msg);
  const head = encodeGossipAfter([MessageType.user], { UserMsgLen: msg.payload.length });
  const out = new Uint8Array(head.length + msg.payload.length);
  out.set(head);
  out.set(msg.payload, head.length);
  return out;
}

/** Seal a plain stream message: compress (always, when enabled) then encrypt (vsn 1). */
export function encodeStream(plain: Uint8Array, opts: SealOptions): Uint8Array {
  let buf = opts.compress ? compressMessage(plain) : plain;
  if (opts.keyring !== null) {
    const len = encryptedLength(1, buf.length);
    const header = new Uint8Array(HEADER);
    header[0] = MessageType.encrypt;
    new DataView(header.buffer).setUint32(1, len);
    const body = encryptPayload(1, opts.keyring.primary(), buf, header, opts.randomBytes(NONCE_SIZE));
    buf = new Uint8Array(HEADER + body.length);
    buf.set(header);
    buf.set(body, HEADER);
  }
  return buf;
}

function tooLarge(n: number, max: number): WireError {
  return new WireError('ERR_WIRE_TOO_LARGE', `stream message of at least ${n} bytes exceeds ${max}`);
}

/** Length of the first complete stream message in `buf`; undefined = need more bytes. Throws
 *  WireError as soon as the prefix is recognisably garbage or declares more than `maxBytes`. */
export function streamFrameLength(buf: Uint8Array, maxBytes: number = MAX_STREAM_BYTES): number | undefined {
  if (buf.length === 0) return undefined;
  const t = buf[0] as number;
  const opts: DecodeOptions = { strings: 'bytes', maxBytes };
  const object = (at: number): number | undefined => {
    const end = skipMsgpackPrefix(buf, at, opts);
    if (end === undefined) {
      if (buf.length > maxBytes) throw tooLarge(buf.length, maxBytes);
      return undefined;
    }
    if (end > maxBytes) throw tooLarge(end, maxBytes);
    return end;
  };
  switch (t) {
    case MessageType.encrypt: {
      if (buf.length < HEADER) return undefined;
      const len = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(1);
      if (len > maxBytes) throw tooLarge(len, maxBytes);
      if (len < encryptedLength(1, 0)) {
        throw new WireError('ERR_WIRE_DECRYPT', `encrypted stream body of ${len} bytes is too small`);
      }
      return buf.length >= HEADER + len ? HEADER + len : undefined;
    }
    case MessageType.compress:
    case MessageType.ping:
    case MessageType.ack:
    case MessageType.err:
      return object(1);
    case MessageType.user: {
      const r = decodeMsgpackPrefix(buf, 1, opts);
      if (r === undefined) return object(1);
      const n = asInt(asMap(r.value).UserMsgLen);
      if (n < 0) throw new WireError('ERR_WIRE_BAD_VALUE', `negative UserMsgLen ${n}`);
      const total = r.end + n;
      if (total > maxBytes) throw tooLarge(total, maxBytes);
      return buf.length >= total ? total : undefined;
    }
    case MessageType.pushPull: {
      const head = decodeMsgpackPrefix(buf, 1, opts);
      if (head === undefined) return object(1);
      const h = decodePushPullHeader(head.value);
      // Every node state is a map of ≥ 1 byte: reject declarations that cannot fit the limit
      // before waiting for megabytes that will never be accepted.
      if (head.end + h.nodes + h.userStateLen > maxBytes) throw tooLarge(head.end + h.nodes + h.userStateLen, maxBytes);
      let at = head.end;
      for (let i = 0; i < h.nodes; i++) {
        // The usual node-state shape is skipped without a decoder per state; anything else, or
        // a state cut short, goes the generic way (which also tells "incomplete" from "bad").
        const fast = nodeStateEnd(buf, at);
        const end = fast >= 0 ? fast : object(at);
        if (end === undefined) return undefined;
        if (end > maxBytes) throw tooLarge(end, maxBytes);
        at = end;
      }
      const total = at + h.userStateLen;
      if (total > maxBytes) throw tooLarge(total, maxBytes);
      return buf.length >= total ? total : undefined;
    }
    default:
      throw new WireError('ERR_WIRE_UNKNOWN_MESSAGE', `invalid stream message type ${t}`);
  }
}

/** Plain stream message (after decryption/decompression) → Message. */
function decodePlain(buf: Uint8Array): Message {
  if (buf.length === 0) throw new WireError('ERR_WIRE_TRUNCATED', 'empty stream message');
  const t = buf[0] as number;
  switch (t) {
    case MessageType.user: {
      const head = readObject(buf, 1);
      const n = asInt(asMap(head.value).UserMsgLen);
      if (n < 0) throw new WireError('ERR_WIRE_BAD_VALUE', `negative UserMsgLen ${n}`);
      if (head.end + n > buf.length) throw new WireError('ERR_WIRE_TRUNCATED', 'stream user message ends early');
      return { type: 'user', payload: buf.slice(head.end, head.end + n) };
    }
    case MessageType.ping:
    case MessageType.ack:
    case MessageType.err:
    case MessageType.pushPull:
      return decodeMessage(buf);
    default:
      throw new WireError('ERR_WIRE_UNKNOWN_MESSAGE', `invalid stream message type ${t}`);
  }
}

/** Decode one complete stream message (as delimited by streamFrameLength). */
export function decodeStream(buf: Uint8Array, opts: { keyring: Keyring | null; verifyIncoming: boolean }): Message {
  if (buf.length === 0) throw new WireError('ERR_WIRE_TRUNCATED', 'empty stream message');
  let plain = buf;
  if (buf[0] === MessageType.encrypt) {
    if (opts.keyring === null) {
      throw new WireError('ERR_WIRE_DECRYPT', 'remote state is encrypted and encryption is not configured');
    }
    if (buf.length < HEADER) throw new WireError('ERR_WIRE_TRUNCATED', 'encrypted stream header ends early');
    const len = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(1);
    if (len > MAX_STREAM_BYTES) throw tooLarge(len, MAX_STREAM_BYTES);
    if (buf.length < HEADER + len) throw new WireError('ERR_WIRE_TRUNCATED', 'encrypted stream body ends early');
    plain = decryptPayload(opts.keyring.keys(), buf.subarray(HEADER, HEADER + len), buf.subarray(0, HEADER));
    if (plain.length === 0) throw new WireError('ERR_WIRE_TRUNCATED', 'empty encrypted stream message');
  } else if (opts.keyring !== null && opts.verifyIncoming) {
    throw new WireError('ERR_WIRE_NOT_ENCRYPTED', 'encryption is configured but remote state is not encrypted');
  }
  if (plain[0] === MessageType.compress) {
    plain = decompressAt(plain, 1, MAX_STREAM_BYTES).payload;
  }
  return decodePlain(plain);
}
