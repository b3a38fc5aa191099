// The dashboard's files: src/ui served as they are (no build step). Only regular files inside
// that directory are served; any path that decodes to a traversal, a hidden file, a symlink or
// anything else is a plain 404 (no hint of what exists outside).

import { existsSync } from 'node:fs';
import { lstat, readFile, realpath } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The dashboard's directory, found relative to this module so the agent serves it from any
 * working directory: src/ui from the sources (src/http/static.ts), dist/ui from the build (this
 * code then lives in dist/*.js or dist/chunks/*.js).
 */
export const UI_DIR = findUiDir();

function findUiDir(): string {
  const candidates = ['./ui/', '../ui/'].map((rel) => resolve(fileURLToPath(new URL(rel, import.meta.url))));
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? candidates[1]!;
}

const MAX_FILE_BYTES = 4 * 1024 * 1024;

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

/**
 * The file for `rest` (the URL path after /ui/, still percent-encoded), or undefined when none
 * may be served. '' is index.html.
 */
export async function loadUiFile(rest: string, dir: string = UI_DIR): Promise<{ body: Buffer; type: string } | undefined> {
  let rel: string;
  try {
    rel = decodeURIComponent(rest);
  } catch {
    return undefined;
  }
  if (rel === '') rel = 'index.html';
  if (rel.endsWith('/')) rel += 'index.html';
  // Every segment must be a plain name: no '..', '.', hidden files, backslashes or NULs.
  const segments = rel.split('/');
  if (segments.some((s) => s === '' || s.startsWith('.') || s.includes('\\') || s.includes('\0'))) return undefined;
  const type = CONTENT_TYPES[extname(rel).toLowerCase()];
  if (type === undefined) return undefined;
  const file = resolve(join(dir, ...segments));
  if (!file.startsWith(dir + sep)) return undefined;
  try {
    const st = await lstat(file);
    if (!st.isFile() || st.size > MAX_FILE_BYTES) return undefined;
    // A symlinked directory on the way must not lead outside either.
    if (!(await realpath(file)).startsWith((await realpath(dir)) + sep)) return undefined;
    return { body: await readFile(file), type };
  } catch {
    return undefined;
  }
}
