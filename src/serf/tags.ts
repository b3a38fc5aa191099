// Tags travel in memberlist's node Meta (5.4). Serf protocol ≥ 3: `ff || msgpack(map)` with
// old-spec strings; protocol 2 (and any Meta not starting with ff) is the legacy form where
// Meta is just the node's role.

import { META_MAX_SIZE, asMap, asString, decodeMsgpack, encodeGossip } from '../wire/index.ts';
import { SerfError } from './errors.ts';

export type Tags = Record<string, string>;

/** Marks the msgpack form; a legacy role string can never start with it (not valid UTF-8). */
const TAG_MAGIC_BYTE = 0xff;

/** Meta bytes for `tags` under Serf protocol `protocolVersion`; throws if over 512 bytes. */
export function encodeTags(tags: Tags, protocolVersion: number): Uint8Array {
  let meta: Uint8Array;
  if (protocolVersion < 3) {
    meta = new TextEncoder().encode(tags['role'] ?? '');
  } else {
    const body = encodeGossip({ ...tags });
    meta = new Uint8Array(1 + body.length);
    meta[0] = TAG_MAGIC_BYTE;
    meta.set(body, 1);
  }
  if (meta.length > META_MAX_SIZE) {
    throw new SerfError(
      'ERR_SERF_TAGS_TOO_LARGE',
      `encoded tags are ${meta.length} bytes, over the limit of ${META_MAX_SIZE}`,
    );
  }
  return meta;
}

/** Tags from a member's Meta; throws SerfError('ERR_SERF_BAD_MESSAGE') if the map is corrupt. */
export function decodeTags(meta: Uint8Array): Tags {
  if (meta.length === 0 || meta[0] !== TAG_MAGIC_BYTE) {
    return { role: new TextDecoder().decode(meta) };
  }
  const tags: Tags = {};
  try {
    const m = asMap(decodeMsgpack(meta.subarray(1), { strings: 'bytes', maxDepth: 2 }));
    // Go emits map keys in random order; sorting makes every consumer's view (handler stdin
    // lines, RPC members, events) stable for the same tags.
    for (const k of Object.keys(m).sort()) tags[k] = asString(m[k]);
  } catch (e) {
    throw new SerfError('ERR_SERF_BAD_MESSAGE', `bad tags in meta: ${(e as Error).message}`);
  }
  return tags;
}

/** Parse `k=v` (as `-tag` takes it); the value may contain '='. */
export function parseTag(kv: string): [string, string] {
  const i = kv.indexOf('=');
  if (i <= 0) throw new SerfError('ERR_SERF_BAD_TAG', `invalid tag '${kv}': expected key=value`);
  return [kv.slice(0, i), kv.slice(i + 1)];
}
