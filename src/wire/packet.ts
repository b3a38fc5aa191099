// UDP datagrams (protocol doc 2.2–2.7). Send: message(s) → compound if several → compress if it
// is shorter → hasCrc header → encrypt. Receive reverses it; hasCrc is only recognised outermost,
// compound and compress may nest (bounded by MAX_NESTING). One bad part of a compound does not
// spoil the others: it is reported in `errors` and the rest is delivered.

import { compressMessage, decompressAt } from './compress.ts';
import { crc32 } from './crc32.ts';
import { WireError } from './errors.ts';
import type { Keyring } from './keyring.ts';
import { MAX_COMPOUND_PARTS, MAX_NESTING, MAX_PACKET_DECOMPRESSED } from './limits.ts';
import { decodeMessage } from './messages.ts';
import { decryptPayload, encryptPayload } from './security.ts';
import { MessageType, type Message } from './types.ts';

export interface SealOptions {
  compress: boolean;
  /** Encrypt with the primary key (vsn 1) when set. */
  keyring: Keyring | null;
  /** Source of the 12-byte GCM nonce (crypto random in production, seeded in simulations). */
  randomBytes: (n: number) => Uint8Array;
}

const NONCE_SIZE = 12;
const CRC_HEADER = 5;

/** `07 | N | len_1..len_N (uint16) | part_1..part_N`. */
export function encodeCompound(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length > MAX_COMPOUND_PARTS) {
    throw new WireError('ERR_WIRE_TOO_LARGE', `compound of ${parts.length} parts exceeds ${MAX_COMPOUND_PARTS}`);
  }
  let total = 2 + 2 * parts.length;
  for (const p of parts) {
    if (p.length > 0xffff) throw new WireError('ERR_WIRE_TOO_LARGE', `compound part of ${p.length} bytes`);
    total += p.length;
  }
  const out = new Uint8Array(total);
  out[0] = MessageType.compound;
  out[1] = parts.length;
  let at = 2;
  for (const p of parts) {
    out[at++] = p.length >> 8;
    out[at++] = p.length & 0xff;
  }
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Prefix the hasCrc header (CRC-32 of `msg`). */
export function addCrc(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(CRC_HEADER + msg.length);
  out[0] = MessageType.hasCrc;
  new DataView(out.buffer).setUint32(1, crc32(msg));
  out.set(msg, CRC_HEADER);
  return out;
}

/** Build one datagram from encoded messages (each `type || body`). */
export function encodePacket(parts: Uint8Array[], opts: SealOptions & { crc: boolean }): Uint8Array {
  if (parts.length === 0) throw new WireError('ERR_WIRE_BAD_VALUE', 'a packet needs at least one message');
  let buf = parts.length === 1 ? (parts[0] as Uint8Array) : encodeCompound(parts);
  if (opts.compress) {
    const c = compressMessage(buf);
    if (c.length < buf.length) buf = c;
  }
  if (opts.crc) buf = addCrc(buf);
  if (opts.keyring !== null) {
    buf = encryptPayload(1, opts.keyring.primary(), buf, null, opts.randomBytes(NONCE_SIZE));
  }
  return buf;
}

export interface DecodePacketOptions {
  keyring: Keyring | null;
  /** With a keyring: refuse plaintext datagrams (Go GossipVerifyIncoming). */
  verifyIncoming: boolean;
}

interface Sink {
  messages: Message[];
  errors: WireError[];
}

function asWireError(e: unknown): WireError {
  if (e instanceof WireError) return e;
  return new WireError('ERR_WIRE_BAD_VALUE', `packet decode failed: ${(e as Error)?.message ?? String(e)}`);
}

function handle(buf: Uint8Array, depth: number, sink: Sink): void {
  if (buf.length === 0) {
    sink.errors.push(new WireError('ERR_WIRE_TRUNCATED', 'missing message type byte'));
    return;
  }
  const t = buf[0] as number;
  try {
    if (t === MessageType.compound || t === MessageType.compress) {
      if (depth >= MAX_NESTING) {
        throw new WireError('ERR_WIRE_NESTING', `compound/compress nested deeper than ${MAX_NESTING}`);
      }
      if (t === MessageType.compress) {
        handle(decompressAt(buf, 1, MAX_PACKET_DECOMPRESSED).payload, depth + 1, sink);
      } else {
        handleCompound(buf, depth + 1, sink);
      }
      return;
    }
    sink.messages.push(decodeMessage(buf));
  } catch (e) {
    sink.errors.push(asWireError(e));
  }
}

function handleCompound(buf: Uint8Array, depth: number, sink: Sink): void {
  if (buf.length < 2) throw new WireError('ERR_WIRE_TRUNCATED', 'missing compound length byte');
  const n = buf[1] as number;
  let at = 2 + 2 * n;
  if (buf.length < at) throw new WireError('ERR_WIRE_TRUNCATED', 'truncated compound length slice');
  for (let i = 0; i < n; i++) {
    const len = ((buf[2 + 2 * i] as number) << 8) | (buf[3 + 2 * i] as number);
    if (at + len > buf.length) {
      // Go delivers the complete parts and logs the rest as truncated; so do we.
      sink.errors.push(new WireError('ERR_WIRE_TRUNCATED', `compound truncated: ${n - i} of ${n} parts missing`));
      return;
    }
    handle(buf.subarray(at, at + len), depth, sink);
    at += len;
  }
}

/** Decode one datagram into its messages. Per-part failures land in `errors`; when nothing in the
 *  datagram is usable (decrypt/CRC failure, or no message decoded) the first error is thrown. */
export function decodePacket(buf: Uint8Array, opts: DecodePacketOptions): { messages: Message[]; errors: WireError[] } {
  let plain = buf;
  if (opts.keyring !== null) {
    try {
      plain = decryptPayload(opts.keyring.keys(), buf, null);
    } catch (e) {
      if (opts.verifyIncoming) {
        // Tell "peer is not encrypting" apart from "peer uses another key": the first is a
        // configuration mismatch operators need to see named.
        if (looksPlain(buf)) {
          throw new WireError('ERR_WIRE_NOT_ENCRYPTED', 'encryption is configured but the packet is not encrypted');
        }
        throw asWireError(e);
      }
      plain = buf; // GossipVerifyIncoming off: accept plaintext during a rollout.
    }
  }
  const sink: Sink = { messages: [], errors: [] };
  if (plain.length >= CRC_HEADER && plain[0] === MessageType.hasCrc) {
    const expected = new DataView(plain.buffer, plain.byteOffset, plain.byteLength).getUint32(1);
    if (crc32(plain, CRC_HEADER) !== expected) throw new WireError('ERR_WIRE_CRC', 'packet checksum mismatch');
    handle(plain.subarray(CRC_HEADER), 0, sink);
  } else {
    handle(plain, 0, sink);
  }
  if (sink.messages.length === 0 && sink.errors.length > 0) throw sink.errors[0] as WireError;
  return sink;
}

function looksPlain(buf: Uint8Array): boolean {
  try {
    const r = decodePacket(buf, { keyring: null, verifyIncoming: false });
    return r.errors.length === 0;
  } catch {
    return false;
  }
}
