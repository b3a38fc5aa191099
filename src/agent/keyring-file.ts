// The keyring file (`-keyring-file`, doc 8.2): a JSON array of base64 keys, first = primary.
// It must exist at start, must not be combined with `-encrypt`, and is rewritten (2-space
// indent, mode 0600) after every successful install/use/remove so a restart keeps the keys.

import { readFileSync } from 'node:fs';
import { Keyring } from '../wire/index.ts';
import { AgentError } from './errors.ts';
import { goMarshalIndent, writePrivateFile } from './tags-file.ts';

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The keyring stored in `path`. `encryptKey` is the `-encrypt` value if any: serf refuses both
 * ("Encryption key not allowed while using a keyring").
 */
export function loadKeyringFile(path: string, encryptKey?: string): Keyring {
  if (encryptKey !== undefined && encryptKey !== '') {
    throw new AgentError('ERR_AGENT_CONFIG', 'Encryption key not allowed while using a keyring');
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AgentError('ERR_AGENT_CONFIG', `Failed to read keyring file: ${errMessage(e)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new AgentError('ERR_AGENT_CONFIG', `Failed to decode keyring file: ${errMessage(e)}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((k): k is string => typeof k === 'string')) {
    throw new AgentError('ERR_AGENT_CONFIG', 'Failed to decode keyring file: expected a JSON array of base64 strings');
  }
  if (parsed.length === 0) {
    throw new AgentError('ERR_AGENT_CONFIG', 'Keyring file contains no keys');
  }
  try {
    return Keyring.fromBase64(parsed);
  } catch (e) {
    throw new AgentError('ERR_AGENT_CONFIG', `Failed to restore keyring: ${errMessage(e)}`);
  }
}

/** The file's text for `keyring` (primary first), exactly as serf writes it. */
export function formatKeyringFile(keyring: Keyring): string {
  return goMarshalIndent(keyring.keys().map((k) => Buffer.from(k).toString('base64')));
}

/** Rewrite the keyring file after a key change. */
export function writeKeyringFile(path: string, keyring: Keyring): void {
  try {
    writePrivateFile(path, formatKeyringFile(keyring));
  } catch (e) {
    throw new AgentError('ERR_AGENT_CONFIG', `Failed to write keyring file: ${errMessage(e)}`);
  }
}
