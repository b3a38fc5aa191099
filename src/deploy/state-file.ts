// Where a coordinator keeps its deploys: <dataDir>/deploys/state.json = {current, history}.
// Written atomically (temp file, fsync, rename, fsync of the directory) so a kill -9 at any
// instant leaves either the old or the new state, never a torn one; that is what lets a
// restarted agent resume a deploy instead of guessing. A write that fails (a full disk) removes
// its temporary file; temporary files a killed agent left behind are removed when the state is
// next loaded (at start), so crashes do not slowly fill the directory.

import { mkdir, open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DeployError } from './errors.ts';
import type { DeployState } from './types.ts';

export const STATE_FILE_VERSION = 1;
/** Finished deploys kept for `kodama deploy status` (oldest dropped first). */
export const MAX_HISTORY = 20;

export interface StoredDeploys {
  /** The running deploy, or the last one (final). */
  current: DeployState | undefined;
  /** Finished deploys before `current`, oldest first. */
  history: DeployState[];
}

export function deploysDir(dataDir: string): string {
  return join(dataDir, 'deploys');
}

export function stateFilePath(dataDir: string): string {
  return join(deploysDir(dataDir), 'state.json');
}

function looksLikeState(v: unknown): v is DeployState {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o['id'] === 'string' && typeof o['phase'] === 'string' && typeof o['spec'] === 'object' && o['spec'] !== null
    && typeof o['step'] === 'number' && typeof o['routeLTime'] === 'number' && Array.isArray(o['events']);
}

const TMP_NAME = /^state\.json\.\d+\.\d+\.tmp$/;

/** Remove temporary files of writes that never finished (an agent killed mid-write). Returns how many. */
export async function removeStaleTemps(dataDir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(deploysDir(dataDir));
  } catch {
    return 0; // no directory yet
  }
  let removed = 0;
  for (const n of names) {
    if (!TMP_NAME.test(n) || n.startsWith(`state.json.${process.pid}.`)) continue;
    await unlink(join(deploysDir(dataDir), n)).then(() => removed++, () => undefined);
  }
  return removed;
}

/** Read the stored deploys; a missing file is "none". A corrupt file is an error (never silently forgotten). */
export async function loadDeploys(dataDir: string): Promise<StoredDeploys> {
  let text: string;
  try {
    text = await readFile(stateFilePath(dataDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { current: undefined, history: [] };
    throw new DeployError('ERR_DEPLOY_FILE', `cannot read ${stateFilePath(dataDir)}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DeployError('ERR_DEPLOY_FILE', `${stateFilePath(dataDir)} is not JSON: ${(e as Error).message}`);
  }
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  if (o['version'] !== STATE_FILE_VERSION) {
    throw new DeployError('ERR_DEPLOY_FILE', `${stateFilePath(dataDir)}: unknown version ${JSON.stringify(o['version'])}`);
  }
  const current = o['current'] === null || o['current'] === undefined ? undefined : o['current'];
  if (current !== undefined && !looksLikeState(current)) throw new DeployError('ERR_DEPLOY_FILE', `${stateFilePath(dataDir)}: malformed current deploy`);
  const history = Array.isArray(o['history']) ? o['history'].filter(looksLikeState) : [];
  return { current, history: history.slice(-MAX_HISTORY) };
}

let tmpSeq = 0;

/** Replace the state file atomically. */
export async function saveDeploys(dataDir: string, s: StoredDeploys): Promise<void> {
  const dir = deploysDir(dataDir);
  const path = stateFilePath(dataDir);
  const tmp = `${path}.${process.pid}.${++tmpSeq}.tmp`;
  const body = JSON.stringify({ version: STATE_FILE_VERSION, current: s.current ?? null, history: s.history.slice(-MAX_HISTORY) }, null, 1);
  try {
    await mkdir(dir, { recursive: true });
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    // The rename itself must survive a crash of the machine too.
    const dh = await open(dir, 'r');
    try {
      await dh.sync().catch(() => undefined); // some filesystems refuse fsync on a directory
    } finally {
      await dh.close();
    }
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    const full = (e as NodeJS.ErrnoException).code === 'ENOSPC' ? ' (the disk is full: free space there)' : '';
    throw new DeployError('ERR_DEPLOY_FILE', `cannot write ${path}: ${(e as Error).message}${full}`);
  }
}
