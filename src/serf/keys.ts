// Key management over internal queries (5.8): what a node does with a `_serf_*-key` request
// (acting on the memberlist Keyring it was given), and how the originator sums the answers into
// one result, like serf's KeyManager.

import type { Keyring } from '../wire/index.ts';
import { QUERY_RESPONSE_SIZE_LIMIT_DEFAULT } from './limits.ts';
import { SerfMessageType, decodeKeyRequest, decodeKeyResponse, encodeKeyResponse } from './messages.ts';
import type { KeyResponse } from './messages.ts';

export type KeyOp = 'install' | 'use' | 'remove' | 'list';

export const KEY_QUERY_NAMES: Record<KeyOp, string> = {
  install: '_serf_install-key',
  use: '_serf_use-key',
  remove: '_serf_remove-key',
  list: '_serf_list-keys',
};

const b64 = (k: Uint8Array): string => Buffer.from(k).toString('base64');

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Answer one key query. Returns the encoded response (fits `limit` bytes: a long key list is
 * truncated with serf's message) and whether the keyring changed (the agent rewrites its
 * keyring file then).
 */
export function answerKeyQuery(
  op: KeyOp,
  payload: Uint8Array,
  keyring: Keyring | null,
  limit = QUERY_RESPONSE_SIZE_LIMIT_DEFAULT,
): { response: Uint8Array; changed: boolean } {
  const r: KeyResponse = { result: false, message: '', keys: null, primaryKey: '' };
  let changed = false;
  if (op === 'list') {
    if (keyring === null) {
      r.message = 'Keyring is empty (encryption not enabled)';
      return { response: encodeKeyResponse(r), changed };
    }
    const keys = keyring.keys().map(b64);
    r.result = true;
    r.primaryKey = b64(keyring.primary());
    r.keys = keys;
    let enc = encodeKeyResponse(r);
    // Drop keys from the end until the answer fits, saying so (serf does the same).
    for (let n = keys.length - 1; enc.length > limit && n >= 0; n--) {
      r.keys = keys.slice(0, n);
      r.message = `truncated key list response, showing first ${n} of ${keys.length} keys`;
      enc = encodeKeyResponse(r);
    }
    return { response: enc, changed };
  }
  if (keyring === null) {
    r.message = 'No keyring to modify (encryption not enabled)';
    return { response: encodeKeyResponse(r), changed };
  }
  let key: Uint8Array;
  try {
    key = decodeKeyRequest(payload);
  } catch (e) {
    r.message = `Failed to decode key request: ${(e as Error).message}`;
    return { response: encodeKeyResponse(r), changed };
  }
  try {
    switch (op) {
      case 'install':
        if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
          throw new Error('key size must be 16, 24 or 32 bytes');
        }
        changed = !keyring.keys().some((k) => sameKey(k, key));
        keyring.install(key);
        break;
      case 'use':
        if (!keyring.keys().some((k) => sameKey(k, key))) throw new Error('Requested key is not in the keyring');
        changed = !sameKey(keyring.primary(), key);
        keyring.use(key);
        break;
      case 'remove':
        if (sameKey(keyring.primary(), key)) throw new Error('Removing the primary key is not allowed');
        changed = keyring.keys().some((k) => sameKey(k, key));
        keyring.remove(key);
        break;
    }
    r.result = true;
  } catch (e) {
    r.message = (e as Error).message;
    changed = false;
  }
  return { response: encodeKeyResponse(r), changed };
}

/** The summed answer to one key operation (serf's KeyResponse). */
export interface KeyResult {
  op: KeyOp;
  /** Alive members when the query started: everyone expected to answer. */
  numNodes: number;
  numResp: number;
  numErr: number;
  /** node → its message (errors and warnings). */
  messages: Record<string, string>;
  /** base64 key → how many nodes hold it (list). */
  keys: Record<string, number>;
  /** base64 key → how many nodes use it as primary (list). */
  primaryKeys: Record<string, number>;
  /** '' on success, else serf's summary ("1/3 nodes reported failure"). */
  error: string;
}

export function newKeyResult(op: KeyOp, numNodes: number): KeyResult {
  return { op, numNodes, numResp: 0, numErr: 0, messages: {}, keys: {}, primaryKeys: {}, error: '' };
}

/** Fold one node's response into the result. */
export function addKeyResponse(res: KeyResult, from: string, payload: Uint8Array): void {
  res.numResp++;
  if (payload[0] !== SerfMessageType.keyResponse) {
    res.messages[from] = `Invalid key query response type: ${payload[0] ?? 'none'}`;
    res.numErr++;
    return;
  }
  let nr: KeyResponse;
  try {
    nr = decodeKeyResponse(payload);
  } catch (e) {
    res.messages[from] = `Failed to decode key query response: ${(e as Error).message}`;
    res.numErr++;
    return;
  }
  if (!nr.result) {
    res.messages[from] = nr.message;
    res.numErr++;
  } else if (nr.message !== '') {
    res.messages[from] = nr.message;
  }
  for (const k of nr.keys ?? []) res.keys[k] = (res.keys[k] ?? 0) + 1;
  if (nr.primaryKey !== '') res.primaryKeys[nr.primaryKey] = (res.primaryKeys[nr.primaryKey] ?? 0) + 1;
}

/** Set `error` as serf's KeyManager reports it once the query is over. */
export function finishKeyResult(res: KeyResult): void {
  if (res.numErr !== 0) res.error = `${res.numErr}/${res.numNodes} nodes reported failure`;
  else if (res.numResp !== res.numNodes) res.error = `${res.numResp}/${res.numNodes} nodes reported success`;
}
