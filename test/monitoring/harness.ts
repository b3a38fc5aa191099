// Monitoring end-to-end harness: real `./bin/kodama agent -config-file x.json` processes (profile
// local, 127.0.0.1, ports from test/lib/agents.ts), web nodes whose `marker` check fails while a
// marker file exists, and a monitor node whose script handler writes each alert's JSON (stdin) to
// its own file in alertsDir — tests read alerts from there. Every agent runs in its own process
// group (checks and handlers are its children); stop() stops them all and removes the files.

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AlertEvent } from '../../src/checks/types.ts';
import { rpcMembers, waitFor } from '../interop/harness.ts';
import { KODAMA_BIN, REPO, startKodama, waitReady } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';

export { waitFor } from '../interop/harness.ts';

export interface Agent extends AgentProcess {
  configPath: string;
}

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
    return a;
  }

  /** Start a web node joining the monitor, with the `marker` check (fails while the marker exists), and wait for its RPC. */
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

  /** Wait for the agent's banner and RPC (startMonitor and startWeb have already). */
  rpcUp(a: Agent, timeoutMs = 30_000): Promise<void> {
    return waitReady(a, timeoutMs);
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
    void this.agent(name).kill();
  }

  signal(name: string, sig: NodeJS.Signals): void {
    this.agent(name).signal(sig);
  }

  logs(): string {
    return [...this.agents.values()].map((a) => `--- ${a.name}\n${a.output().slice(-3000)}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Start an agent from a config file written with the picked ports, and wait for its banner and RPC. */
  private async spawnAgent(name: string, extra: Record<string, unknown>): Promise<Agent> {
    const configPath = join(this.dir, `${name}.json`);
    const p = await startKodama(name, {
      argv: ({ port, rpcPort }) => {
        const config = {
          node_name: name,
          bind: `127.0.0.1:${port}`,
          rpc_addr: `127.0.0.1:${rpcPort}`,
          profile: 'local',
          log_level: 'debug',
          ...extra,
        };
        writeFileSync(configPath, JSON.stringify(config, null, 2));
        return ['agent', `-config-file=${configPath}`];
      },
    });
    const a: Agent = Object.assign(p, { configPath });
    this.agents.set(name, a);
    return a;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
