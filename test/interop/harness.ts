// Interop helpers over real agents: members through RPC or a CLI, bounded waits. The agents
// themselves (and their ports) come from test/lib/agents.ts.

import { execFile } from 'node:child_process';
import { RpcClient } from '../../src/rpc/index.ts';
import type { RpcMember } from '../../src/rpc/index.ts';
import { KODAMA_BIN, REPO, SERF_BIN } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';

/** Members through RPC (works against serf and kodama alike); undefined if unreachable. */
export async function rpcMembers(addr: string): Promise<RpcMember[] | undefined> {
  let c: RpcClient | undefined;
  try {
    c = await RpcClient.connect(addr, { timeoutMs: 2000 });
    return await c.members();
  } catch {
    return undefined;
  } finally {
    c?.close();
  }
}

export interface CliMember {
  name: string;
  addr: string;
  port: number;
  tags: Record<string, string>;
  status: string;
}

/** Run a CLI (`serf` or `./bin/kodama`) `members -format json` and parse its output. */
export function cliMembers(bin: 'serf' | 'kodama', rpcAddr: string): Promise<CliMember[]> {
  const file = bin === 'serf' ? SERF_BIN : KODAMA_BIN;
  return new Promise((resolve, reject) => {
    execFile(file, ['members', `-rpc-addr=${rpcAddr}`, '-format=json'], { timeout: 15_000, cwd: REPO }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${bin} members failed: ${err.message}\n${stderr}`));
        return;
      }
      try {
        resolve((JSON.parse(stdout) as { members: CliMember[] | null }).members ?? []);
      } catch (e) {
        reject(new Error(`${bin} members: bad JSON: ${(e as Error).message}\n${stdout}`));
      }
    });
  });
}

/** Poll `check` every `intervalMs` until it returns a value, or fail after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined> | T | undefined,
  context?: () => string,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 10_000; i++) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const extra = context ? `\n--- context ---\n${context().slice(-4000)}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}${extra}`);
}

/** Wait until `addr`'s view has every name in `want` with the given status. */
export function waitStatuses(
  addr: string,
  want: Record<string, string>,
  timeoutMs: number,
  context?: () => string,
): Promise<RpcMember[]> {
  return waitFor(
    `${addr} to see ${JSON.stringify(want)}`,
    timeoutMs,
    async () => {
      const ms = await rpcMembers(addr);
      if (ms === undefined) return undefined;
      for (const [name, status] of Object.entries(want)) {
        if (ms.find((m) => m.name === name)?.status !== status) return undefined;
      }
      return ms;
    },
    context,
  );
}

/** The process's exit code, or 'still running' after `timeoutMs` (the timer never outlives it). */
export async function exitWithin(p: AgentProcess, timeoutMs: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'still running'>((r) => {
    timer = setTimeout(() => r('still running'), timeoutMs);
  });
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
