// Shared by the agent-config tests: a temp directory of config files (removed after the file's
// tests) and a matcher for the config errors they expect.
import { after } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../src/agent/errors.ts';

/** A fresh directory; file(name, body) writes JSON (or a string as it is) into it, returning its path. */
export function configFiles(prefix: string): { dir: string; file(name: string, body: unknown): string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    file(name, body) {
      const p = join(dir, name);
      writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
      return p;
    },
  };
}

/** For assert.throws: an AgentError ERR_AGENT_CONFIG whose message matches. */
export const configError = (re: RegExp) => (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG' && re.test(e.message);
