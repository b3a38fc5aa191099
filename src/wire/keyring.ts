// The gossip encryption keyring: an ordered list of AES keys where index 0 is the primary (the only
// key used to encrypt); every key is tried when decrypting, so keys can be rotated cluster-wide
// (install everywhere → use everywhere → remove the old one) without dropping traffic.

import { WireError } from './errors.ts';

const VALID_KEY_SIZES = new Set([16, 24, 32]);

function checkKey(k: Uint8Array): void {
  if (!VALID_KEY_SIZES.has(k.length)) {
    throw new WireError('ERR_WIRE_BAD_VALUE', `key size must be 16, 24 or 32 bytes, got ${k.length}`);
  }
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Keyring {
  #keys: Uint8Array[];

  /** Base64 keys as `serf agent -encrypt` and the keyring file take them; the first is primary. */
  static fromBase64(keys: string[]): Keyring {
    return new Keyring(
      keys.map((s) => {
        const t = s.trim();
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) {
          throw new WireError('ERR_WIRE_BAD_VALUE', 'encryption key is not valid base64');
        }
        return new Uint8Array(Buffer.from(t, 'base64'));
      }),
    );
  }

  constructor(keys: Uint8Array[]) {
    if (keys.length === 0) throw new WireError('ERR_WIRE_KEYRING', 'keyring needs at least one key');
    this.#keys = [];
    for (const k of keys) {
      checkKey(k);
      if (!this.#keys.some((x) => sameKey(x, k))) this.#keys.push(Uint8Array.from(k));
    }
  }

  primary(): Uint8Array {
    return this.#keys[0] as Uint8Array;
  }

  /** All keys, primary first (copies of the list, the caller may not mutate the ring). */
  keys(): Uint8Array[] {
    return this.#keys.slice();
  }

  /** Add a key for decryption (no-op if present). */
  install(k: Uint8Array): void {
    checkKey(k);
    if (!this.#keys.some((x) => sameKey(x, k))) this.#keys.push(Uint8Array.from(k));
  }

  /** Make an installed key the primary. */
  use(k: Uint8Array): void {
    const i = this.#keys.findIndex((x) => sameKey(x, k));
    if (i < 0) throw new WireError('ERR_WIRE_KEYRING', 'requested key is not in the keyring');
    const [key] = this.#keys.splice(i, 1);
    this.#keys.unshift(key as Uint8Array);
  }

  /** Drop a non-primary key (removing the primary would leave nothing to encrypt with). */
  remove(k: Uint8Array): void {
    const i = this.#keys.findIndex((x) => sameKey(x, k));
    if (i === 0) throw new WireError('ERR_WIRE_KEYRING', 'removing the primary key is not allowed');
    if (i > 0) this.#keys.splice(i, 1);
  }
}
