// A cluster of N real agents of one kind (`serf agent` or `./bin/kodama agent`) on 127.0.0.1,
// started with identical flags (profile lan, one seed joined by everyone, the same handler
// script writing one event file per node), for the serf-vs-kodama benchmark.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RpcClient } from '../../src/rpc/client.ts';
import { KODAMA_BIN, REPO, startAgent } from '../../test/lib/agents.ts';
import type { AgentProcess, Kind } from '../../test/lib/agents.ts';
import { sleep } from './procs.ts';

export { KODAMA_BIN, REPO };
export type { Kind };
export const HANDLER = join(REPO, 'scripts/bench-handler.sh');

export interface AgentProc {
  name: string;
  kind: Kind;
  port: number;
  rpcAddr: string;
  logFile: string;
  eventFile: string;
  proc: AgentProcess;
  /** Exec → the agent's own 'running' banner in its log (ms; polled every 5 ms). */
  startToRunningMs: number | undefined;
}

export interface ClusterOptions {
  kind: Kind;
  n: number;
  /** Scratch directory for this cluster (agent logs, handler event files). */
  dir: string;
  /** Pass `-event-handler`; false when the agent binary cannot run handlers yet. */
  handlers: boolean;
  log: (line: string) => void;
  /** Agents started at once (each waits for its RPC to answer before the slot frees). */
  startConcurrency: number;
  /** Per-agent limit for its RPC to come up. */
  startTimeoutMs: number;
}

export interface HandlerEvent {
  /** Unix time in ms (µs precision) at which the agent started the handler. */
  tMs: number;
  self: string;
  event: string;
  userEvent: string;
  members: string[];
}

/** Does `kodama agent` accept -event-handler yet? (Asked through its --help.) */
export function kodamaHasHandlers(): boolean {
  try {
    const out = execFileSync(KODAMA_BIN, ['agent', '--help'], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
    return out.includes('-event-handler');
  } catch (e) {
    const out = (e as { stdout?: string }).stdout ?? '';
    return out.includes('-event-handler');
  }
}

async function startOne(o: ClusterOptions, index: number, seed: string | undefined): Promise<AgentProc> {
  const name = `${o.kind}-${String(index).padStart(3, '0')}`;
  const logFile = join(o.dir, 'logs', `${name}.log`);
  const eventFile = join(o.dir, 'events', `${name}.log`);
  let lastErr: unknown;
  // A start that fails (exits, or no banner and RPC within the limit) is tried again, at most 3
  // times; a port taken before the agent bound it gets fresh ports inside startAgent already.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const proc = await startAgent(o.kind, name, {
        profile: 'lan',
        // serf runs the handler through `/bin/sh -c`, so the output file rides along as an argument.
        args: o.handlers ? [`-event-handler=${HANDLER} ${eventFile}`] : [],
        join: seed === undefined ? [] : [seed],
        logFile,
        startTimeoutMs: o.startTimeoutMs,
        // The benchmark kills nodes itself and reports what it measured: no death reports on stderr.
        expectExit: true,
      });
      // Exec → the agent's own 'running' banner in its log (polled every 5 ms).
      const startToRunningMs = proc.bannerAt === undefined ? undefined : proc.bannerAt - proc.spawnedAt;
      return { name, kind: o.kind, port: proc.port, rpcAddr: proc.rpcAddr, logFile, eventFile, proc, startToRunningMs };
    } catch (e) {
      lastErr = e;
    }
  }
  throw new Error(`${name}: ${(lastErr as Error).message}`);
}

export class AgentCluster {
  readonly agents: AgentProc[] = [];
  constructor(readonly opts: ClusterOptions) {}

  get kind(): Kind {
    return this.opts.kind;
  }

  /** Start the seed, then everyone else with -join=seed, a few at a time. */
  async start(): Promise<void> {
    const o = this.opts;
    mkdirSync(join(o.dir, 'logs'), { recursive: true });
    mkdirSync(join(o.dir, 'events'), { recursive: true });
    const seed = await startOne(o, 0, undefined);
    this.agents.push(seed);
    const seedAddr = `127.0.0.1:${seed.port}`;
    let next = 1;
    let lastReport = Date.now();
    const worker = async (): Promise<void> => {
      while (next < o.n) {
        const i = next++;
        this.agents.push(await startOne(o, i, seedAddr));
        if (Date.now() - lastReport > 5000) {
          lastReport = Date.now();
          o.log(`started ${this.agents.length}/${o.n}`);
        }
      }
    };
    // Let every worker finish (stop handing out work on the first failure) before reporting, so
    // no agent gets started after the caller has already torn the cluster down.
    const settled = await Promise.allSettled(
      Array.from({ length: Math.min(o.startConcurrency, o.n - 1) }, () =>
        worker().catch((e: unknown) => {
          next = o.n;
          throw e;
        }),
      ),
    );
    this.agents.sort((a, b) => a.name.localeCompare(b.name));
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
  }

  /** Wait until every agent's member list (through RPC) shows all N alive; returns the wait in ms. */
  async waitConverged(timeoutMs: number): Promise<number> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    let lastReport = started;
    const done = new Set<string>();
    for (let round = 0; round < 100_000; round++) {
      // Ask only the agents not yet converged; a converged view stays converged in a quiet cluster.
      for (const a of this.agents) {
        if (done.has(a.name)) continue;
        let c: RpcClient | undefined;
        try {
          c = await RpcClient.connect(a.rpcAddr, { timeoutMs: 3000 });
          const ms = await c.members();
          if (ms.filter((m) => m.status === 'alive').length >= this.opts.n) done.add(a.name);
        } catch {
          // not answering right now: try again next round
        } finally {
          c?.close();
        }
      }
      if (done.size === this.agents.length) return Date.now() - started;
      if (Date.now() >= deadline) break;
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        this.opts.log(`converged views ${done.size}/${this.agents.length}`);
      }
      await sleep(500);
    }
    const missing = this.agents.filter((a) => !done.has(a.name)).map((a) => a.name);
    throw new Error(`${this.kind} cluster of ${this.opts.n} not converged after ${timeoutMs} ms; not converged: ${missing.slice(0, 10).join(', ')}`);
  }

  /** Every handler line written so far, from all nodes. */
  readEvents(): HandlerEvent[] {
    const dir = join(this.opts.dir, 'events');
    const out: HandlerEvent[] = [];
    let files: string[];
    try {
      files = readdirSync(dir);
    } catch {
      return out;
    }
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(join(dir, f), 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        const parts = line.split(' ');
        if (parts.length < 5) continue;
        // $EPOCHREALTIME follows the locale's decimal separator.
        const t = Number((parts[0] ?? '').replace(',', '.'));
        if (!Number.isFinite(t)) continue;
        out.push({
          tMs: t * 1000,
          self: parts[1] ?? '',
          event: parts[2] ?? '',
          userEvent: parts[3] ?? '-',
          members: (parts[4] ?? '-') === '-' ? [] : (parts[4] ?? '').split(','),
        });
      }
    }
    return out;
  }

  /** Total bytes in the handler files: a cheap "has any handler run since" probe. */
  eventBytes(): number {
    let total = 0;
    for (const a of this.agents) {
      try {
        total += statSync(a.eventFile).size;
      } catch {
        // no event yet
      }
    }
    return total;
  }

  /** Agents still running. */
  running(): AgentProc[] {
    return this.agents.filter((a) => !a.proc.hasExited());
  }

  /** SIGKILL everything and wait (bounded) for the exits. */
  async destroy(): Promise<void> {
    await Promise.race([Promise.all(this.agents.map((a) => a.proc.kill())), sleep(5000)]);
  }
}
