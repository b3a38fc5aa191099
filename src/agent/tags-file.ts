// The tags file (`-tags-file`, doc 8.3): a JSON object of tags, read at start (a missing file
// means no tags yet) and rewritten on every tag change, 2-space indented, mode 0600 (tags may
// be sensitive), as serf's agent writes it. It may not be combined with configured tags.
//
// Also home of the two JSON-file helpers the keyring file shares: Go's MarshalIndent layout and
// an atomic private write (a crash mid-write must not leave a half file that stops the restart).

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Tags } from '../serf/tags.ts';
import { AgentError } from './errors.ts';

/** json.MarshalIndent(v, "", "  "): Go sorts map keys and escapes <, > and & for HTML. */
export function goMarshalIndent(v: unknown): string {
  const sortKeys = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sortKeys);
    if (x !== null && typeof x === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(x).sort()) out[k] = sortKeys((x as Record<string, unknown>)[k]);
      return out;
    }
    return x;
  };
  return JSON.stringify(sortKeys(v), null, 2)
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}

/** Write `data` to `path` with mode 0600 via a temp file + rename (all or nothing). */
export function writePrivateFile(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Tags stored in `path`; `{}` when the file does not exist. `configuredTags` are the tags from
 * flags/config: serf refuses both at once.
 */
export function loadTagsFile(path: string, configuredTags: Tags = {}): Tags {
  if (Object.keys(configuredTags).length > 0) {
    throw new AgentError('ERR_AGENT_CONFIG', 'Tags config not allowed while using tag files');
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new AgentError('ERR_AGENT_CONFIG', `Failed to read tags file: ${errMessage(e)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new AgentError('ERR_AGENT_CONFIG', `Failed to decode tags file: ${errMessage(e)}`);
  }
  // Go decodes JSON null into a map as "no change"; anything but an object of strings is an error.
  if (parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new AgentError('ERR_AGENT_CONFIG', 'Failed to decode tags file: expected a JSON object of strings');
  }
  const tags: Tags = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof v !== 'string') {
      throw new AgentError('ERR_AGENT_CONFIG', `Failed to decode tags file: tag '${k}' is not a string`);
    }
    tags[k] = v;
  }
  return tags;
}

/** Rewrite the tags file (after every tag change). */
export function writeTagsFile(path: string, tags: Tags): void {
  try {
    writePrivateFile(path, goMarshalIndent(tags));
  } catch (e) {
    throw new AgentError('ERR_AGENT_CONFIG', `Failed to write tags file: ${errMessage(e)}`);
  }
}
