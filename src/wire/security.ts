// AES-GCM payload encryption as memberlist does it (protocol doc 2.7): vsn byte, 12-byte nonce,
// GCM ciphertext + 16-byte tag. vsn 1 seals the plaintext as is; vsn 0 (memberlist protocol 1)
// PKCS#7-pads it to the AES block size first. Pure byte work on node:crypto: no I/O, and the nonce
// comes from the caller so tests and simulations stay deterministic.

import { nodeCrypto } from './builtins.ts';
import { WireError } from './errors.ts';

export type EncryptionVersion = 0 | 1;

const NONCE_SIZE = 12;
const TAG_SIZE = 16;
const BLOCK_SIZE = 16;
const HEADER_SIZE = 1 + NONCE_SIZE;

function algo(key: Uint8Array): 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' {
  switch (key.length) {
    case 16:
      return 'aes-128-gcm';
    case 24:
      return 'aes-192-gcm';
    case 32:
      return 'aes-256-gcm';
    default:
      throw new WireError('ERR_WIRE_BAD_VALUE', `key size must be 16, 24 or 32 bytes, got ${key.length}`);
  }
}

/** Size of the encrypted form of `plainLength` bytes. */
export function encryptedLength(vsn: EncryptionVersion, plainLength: number): number {
  if (vsn === 1) return HEADER_SIZE + plainLength + TAG_SIZE;
  return HEADER_SIZE + plainLength + (BLOCK_SIZE - (plainLength % BLOCK_SIZE)) + TAG_SIZE;
}

/** Seal `plain` with `key`; `aad` is empty for UDP and the 5-byte stream header for TCP. */
export function encryptPayload(
  vsn: EncryptionVersion,
  key: Uint8Array,
  plain: Uint8Array,
  aad: Uint8Array | null,
  nonce: Uint8Array,
): Uint8Array {
  if (nonce.length !== NONCE_SIZE) throw new WireError('ERR_WIRE_BAD_VALUE', `nonce must be ${NONCE_SIZE} bytes`);
  let src = plain;
  if (vsn === 0) {
    const pad = BLOCK_SIZE - (plain.length % BLOCK_SIZE);
    src = new Uint8Array(plain.length + pad);
    src.set(plain);
    src.fill(pad, plain.length);
  }
  const cipher = nodeCrypto().createCipheriv(algo(key), key, nonce);
  if (aad !== null && aad.length > 0) cipher.setAAD(aad);
  const out = new Uint8Array(HEADER_SIZE + src.length + TAG_SIZE);
  out[0] = vsn;
  out.set(nonce, 1);
  let at = HEADER_SIZE;
  const body = cipher.update(src);
  out.set(body, at);
  at += body.length;
  const fin = cipher.final();
  out.set(fin, at);
  at += fin.length;
  out.set(cipher.getAuthTag(), at);
  return out;
}

function tryOpen(key: Uint8Array, msg: Uint8Array, aad: Uint8Array | null): Uint8Array | null {
  try {
    const decipher = nodeCrypto().createDecipheriv(algo(key), key, msg.subarray(1, HEADER_SIZE));
    if (aad !== null && aad.length > 0) decipher.setAAD(aad);
    decipher.setAuthTag(msg.subarray(msg.length - TAG_SIZE));
    const a = decipher.update(msg.subarray(HEADER_SIZE, msg.length - TAG_SIZE));
    const b = decipher.final();
    if (b.length === 0) return new Uint8Array(a.buffer, a.byteOffset, a.length);
    const out = new Uint8Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  } catch {
    // Tag mismatch: this key is not the one; the caller tries the next.
    return null;
  }
}

/** Open a sealed payload with the first key whose tag verifies; throws ERR_WIRE_DECRYPT. */
export function decryptPayload(keys: readonly Uint8Array[], msg: Uint8Array, aad: Uint8Array | null): Uint8Array {
  if (msg.length === 0) throw new WireError('ERR_WIRE_DECRYPT', 'cannot decrypt empty payload');
  const vsn = msg[0] as number;
  if (vsn > 1) throw new WireError('ERR_WIRE_DECRYPT', `unsupported encryption version ${vsn}`);
  const min = encryptedLength(vsn as EncryptionVersion, 0);
  if (msg.length < min) throw new WireError('ERR_WIRE_DECRYPT', `payload too small to decrypt (${msg.length} < ${min})`);
  for (const key of keys) {
    const plain = tryOpen(key, msg, aad);
    if (plain === null) continue;
    if (vsn === 1) return plain;
    const pad = plain[plain.length - 1] ?? 0;
    if (pad < 1 || pad > BLOCK_SIZE || pad > plain.length) {
      throw new WireError('ERR_WIRE_DECRYPT', `bad PKCS#7 padding ${pad}`);
    }
    return plain.subarray(0, plain.length - pad);
  }
  throw new WireError('ERR_WIRE_DECRYPT', 'no installed keys could decrypt the message');
}
