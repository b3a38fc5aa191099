// Monitoring end-to-end harness: real `./bin/kodama agent -config-file x.json` processes (profile
// local, 127.0.0.1, free ports), web nodes whose `marker` check fails while a marker file exists,
// and a monitor node whose script handler writes each alert's JSON (stdin) to its own file in
// alertsDir — tests read alerts from there. Every agent runs in its own process group (checks and
// handlers are its children) and stop() SIGKILLs every group still alive and removes the files.

import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AlertEvent } from '../../src/checks/types.ts';
import { KODAMA_BIN, REPO, freePort, rpcMembers, waitFor } from '../interop/harness.ts';

export { waitFor } from '../interop/harness.ts';

export interface Agent {
  name: string;
  child: ChildProcess;
  port: number;
  rpcAddr: string;
  configPath: string;
  output(): string;
  exited: Promise<number | null>;
}

const groups = new Set<ChildProcess>();

function killGroup(c: ChildProcess, signal: NodeJS.Signals): void {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(-c.pid, signal);
  } catch {
    try {
      c.kill(signal);
    } catch {
      // already gone
    }
  }
}

process.once('exit', () => {
  for (const c of groups) killGroup(c, 'SIGKILL');
});

export interface ClusterOptions {
  /** The monitor's script handler filter `occurrences` (default 1). */
  occurrences?: number;
  /** Web nodes' check interval (default 1s). */
  checkInterval?: string;
}

export class MonitoringCluster {
  readonly dir: string;
  readonly alertsDir: string;
  readonly markersDir: string;
  readonly agents = new Map<string, Agent>();
  private readonly opts: Required<ClusterOptions>;
  private monitorPort = 0;

  constructor(opts: ClusterOptions = {}) {
    this.opts = { occurrences: opts.occurrences ?? 1, checkInterval: opts.checkInterval ?? '1s' };
    this.dir = mkdtempSync(join(tmpdir(), 'kodama-mon-'));
    this.alertsDir = join(this.dir, 'alerts');
    this.markersDir = join(this.dir, 'markers');
    mkdirSync(this.alertsDir);
    mkdirSync(this.markersDir);
    // One file per alert, renamed into place so a reader never sees half of one.
    writeFileSync(
      join(this.dir, 'handler.sh'),
      `#!/bin/sh\nf="${this.alertsDir}/$(date +%s%N)-$$"\ncat > "$f.tmp" && mv "$f.tmp" "$f.json"\n`,
    );
  }

  agent(name: string): Agent {
    const a = this.agents.get(name);
    if (a === undefined) throw new Error(`no agent ${name}`);
    return a;
  }

  /**
   * Start a monitor and wait for its RPC. The first one seeds the cluster (start it first); later
   * ones join it. All monitors run the same handler (only the leader's runs).
   */
  async startMonitor(name = 'mon-1'): Promise<Agent> {
    const first = this.monitorPort === 0;
    const a = await this.spawnAgent(name, {
      tags: { role: 'monitor' },
      ...(first ? {} : { start_join: [`127.0.0.1:${this.monitorPort}`] }),
      monitoring: {
        handlers: {
          alerts: {
            type: 'script',
            command: `sh ${join(this.dir, 'handler.sh')}`,
            timeout: '5s',
            filters: { occurrences: this.opts.occurrences },
          },
        },
        default_handlers: ['alerts'],
        member_handlers: ['alerts'],
      },
    });
    if (first) this.monitorPort = a.port;
    await this.rpcUp(a);
    return a;
  }

  /** Start a web node joining the monitor, with the `marker` check (fails while the marker exists). */
  startWeb(name: string): Promise<Agent> {
    const marker = this.markerPath(name);
    return this.spawnAgent(name, {
      tags: { role: 'web' },
      start_join: [`127.0.0.1:${this.monitorPort}`],
      leave_on_terminate: true,
      checks: [
        {
          name: 'marker',
          command: `if [ -e '${marker}' ]; then echo 'CRITICAL: marker ${name} present'; exit 2; fi; echo 'OK: no marker'`,
          interval: this.opts.checkInterval,
          timeout: '1s',
          subscriptions: ['role=web'],
        },
      ],
    });
  }

  markerPath(node: string): string {
    return join(this.markersDir, node);
  }

  setMarker(node: string, present: boolean): void {
    if (present) writeFileSync(this.markerPath(node), 'x');
    else rmSync(this.markerPath(node), { force: true });
  }

  /** Every alert the handler received so far, in the order it ran. */
  alerts(): AlertEvent[] {
    const files = readdirSync(this.alertsDir)
      .filter((f) => f.endsWith('.json'))
      .sort();
    const out: AlertEvent[] = [];
    for (const f of files) {
      const text = readFileSync(join(this.alertsDir, f), 'utf8');
      try {
        out.push(JSON.parse(text) as AlertEvent);
      } catch (e) {
        throw new Error(`alert file ${f} is not JSON: ${(e as Error).message}: ${text.slice(0, 200)}`);
      }
    }
    return out;
  }

  /** Alerts for one node (and optionally action/kind). */
  alertsFor(node: string, action?: AlertEvent['action'], kind?: AlertEvent['kind']): AlertEvent[] {
    return this.alerts().filter((a) => a.entity.name === node && (action === undefined || a.action === action) && (kind === undefined || a.kind === kind));
  }

  /** A one-line summary of every alert, for assertion messages. */
  describeAlerts(): string {
    return this.alerts()
      .map((a) => `${a.action} ${a.kind} ${a.entity.name}/${a.check.name} ${a.check.state} occ=${a.check.occurrences} silenced=${a.check.silenced}`)
      .join('\n');
  }

  /** Wait until the monitor's member list shows `expect` (name → status). */
  async waitMembers(expect: Record<string, string>, timeoutMs: number, from = 'mon-1'): Promise<void> {
    await waitFor(
      `members ${JSON.stringify(expect)} as seen by ${from}`,
      timeoutMs,
      async () => {
        const ms = await rpcMembers(this.agent(from).rpcAddr);
        if (ms === undefined) return undefined;
        const st = new Map(ms.map((m) => [m.name, m.status]));
        return Object.entries(expect).every(([n, s]) => st.get(n) === s) ? true : undefined;
      },
      () => this.logs(),
    );
  }

  async rpcUp(a: Agent, timeoutMs = 30_000): Promise<void> {
    // The banner first: an RPC port that answers may be another process's.
    await waitFor(
      `${a.name} RPC up`,
      timeoutMs,
      async () => (a.output().includes('==> kodama agent running!') && (await rpcMembers(a.rpcAddr)) !== undefined ? true : undefined),
      () => a.output(),
    );
  }

  /** Run `./bin/kodama <args>` against an agent's RPC; resolves with exit code and output. */
  cli(args: string[], via = 'mon-1'): Promise<{ code: number; stdout: string; stderr: string }> {
    const rpc = this.agent(via).rpcAddr;
    return new Promise((resolve) => {
      execFile(KODAMA_BIN, [...args, `-rpc-addr=${rpc}`], { timeout: 20_000, cwd: REPO }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** SIGKILL the agent's whole process group (a crashed host). */
  crash(name: string): void {
    killGroup(this.agent(name).child, 'SIGKILL');
  }

  signal(name: string, sig: NodeJS.Signals): void {
    const c = this.agent(name).child;
    c.kill(sig);
  }

  logs(): string {
    return [...this.agents.values()].map((a) => `--- ${a.name}\n${a.output().slice(-3000)}`).join('\n');
  }

  async stop(): Promise<void> {
    const waits: Promise<unknown>[] = [];
    for (const a of this.agents.values()) {
      killGroup(a.child, 'SIGKILL');
      waits.push(Promise.race([a.exited, new Promise((r) => setTimeout(r, 3000))]));
    }
    await Promise.all(waits);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async spawnAgent(name: string, extra: Record<string, unknown>): Promise<Agent> {
    const port = await freePort();
    const rpcPort = await freePort();
    const config = {
      node_name: name,
      bind: `127.0.0.1:${port}`,
      rpc_addr: `127.0.0.1:${rpcPort}`,
      profile: 'local',
      log_level: 'debug',
      ...extra,
    };
    const configPath = join(this.dir, `${name}.json`);
    writeFileSync(configPath, JSON.stringify(config, null, 2));
    const child = spawn(KODAMA_BIN, ['agent', `-config-file=${configPath}`], { cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    groups.add(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => {
        groups.delete(child);
        resolve(code);
      });
    });
    const a: Agent = { name, child, port, rpcAddr: `127.0.0.1:${rpcPort}`, configPath, output: () => out, exited };
    this.agents.set(name, a);
    return a;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
