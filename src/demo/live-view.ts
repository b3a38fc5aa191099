// The demo's live view: plain-text lines stamped with seconds since the start, readable in a
// terminal and in a CI log. Three sources: cluster events as the balancer sees them, changes of
// the balancer's backend set (polled), and requests per node per second from the load records
// (every second at a terminal; into a file or pipe only when they change, or every 10 s, so a
// demo left running does not fill its log).

import type { Agent } from '../agent/agent.ts';
import type { Backend, Frontend } from '../discovery/types.ts';
import type { RequestRecord } from './loadgen.ts';

/** What the demo reads of the balancer role (agent.balancerRole, issue 4's BalancerRole). */
export interface RoleView {
  status(): { service: string; frontend: Frontend; backends: Backend[] }[];
  counters(): Record<string, number>;
}

export class Printer {
  readonly t0 = Date.now();
  constructor(private readonly write: (text: string) => void) {}

  /** Seconds since start, for "after X s" figures and line stamps. */
  secs(atMs: number = Date.now()): string {
    return ((atMs - this.t0) / 1000).toFixed(1);
  }

  line(msg: string): void {
    this.write(`[${this.secs().padStart(5)}s] ${msg}\n`);
  }

  /** Unstamped text (headers, summaries). */
  raw(text: string): void {
    this.write(text);
  }
}

export function describeBackends(backends: readonly Backend[]): string {
  if (backends.length === 0) return '(none)';
  return [...backends]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((b) => (b.state === 'ready' ? b.id : `${b.id} (${b.state})`))
    .join(', ');
}

const VERB: Record<string, string> = {
  'member-join': 'joined',
  'member-leave': 'left',
  'member-failed': 'FAILED',
  'member-update': 'updated',
  'member-reap': 'reaped',
};

export interface LiveViewOptions {
  agent: Agent;
  role: () => RoleView | undefined;
  service: string;
  records: () => readonly RequestRecord[];
  printer: Printer;
  /** How often the backend set is compared (ms). */
  pollMs?: number;
  /** Measure traffic every this many ms (0 = never). */
  trafficEveryMs?: number;
  /**
   * Whether the output is a terminal (default true): a traffic line at every measure. Otherwise
   * (a log file, a CI log) only when it tells something new — the set of answering nodes
   * changed, failures started or stopped — or TRAFFIC_QUIET_MAX_MS after the last one.
   */
  terminal?: boolean;
  /** The clock (tests); default Date.now, as the load records'. */
  now?: () => number;
}

/** Off a terminal, a traffic line at least this often while nothing changes. */
export const TRAFFIC_QUIET_MAX_MS = 10_000;

export interface BackendChange {
  atMs: number;
  backends: Backend[];
}

/** Prints as things happen; also keeps the history of backend sets for the script's checks. */
export class LiveView {
  readonly changes: BackendChange[] = [];
  private current = '';
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly offMember: () => void;
  private readonly now: () => number;
  private trafficFrom: number;
  /** Off a terminal: what the last traffic line showed (answering nodes, failing or not) and when. */
  private lastTraffic: { shape: string; atMs: number } | undefined;
  private quiet = false;

  constructor(private readonly o: LiveViewOptions) {
    this.now = o.now ?? Date.now;
    this.trafficFrom = this.now();
    this.offMember = o.agent.on('member', (e) => {
      if (this.quiet) return;
      for (const m of e.members) {
        if (m.name === o.agent.nodeName) continue;
        const key = `s:${o.service}`;
        const svc = m.tags[key];
        let what = VERB[e.type] ?? e.type;
        if (e.type === 'member-join') what += svc === undefined ? ` (${o.service} not advertised yet)` : ` (tag ${key}=${svc})`;
        if (e.type === 'member-update') {
          what =
            svc === undefined
              ? `no longer advertises ${o.service} (no tag ${key})`
              : svc.split(',').includes('drain')
                ? `drains ${o.service} (tag ${key}=${svc})`
                : `advertises ${o.service} (tag ${key}=${svc})`;
        }
        o.printer.line(`cluster: ${m.name} ${what}`);
      }
    });
    this.timers.push(setInterval(() => this.pollBackends(), o.pollMs ?? 100));
    const every = o.trafficEveryMs ?? 1000;
    if (every > 0) this.timers.push(setInterval(() => this.traffic(), every));
  }

  /** Current backends of the service, or [] before the role runs. */
  backends(): Backend[] {
    const s = this.o.role()?.status().find((x) => x.service === this.o.service);
    return s?.backends ?? [];
  }

  pollBackends(): void {
    const bs = this.backends();
    const text = describeBackends(bs);
    if (text === this.current) return;
    this.current = text;
    this.changes.push({ atMs: Date.now(), backends: bs.map((b) => ({ ...b })) });
    if (!this.quiet) this.o.printer.line(`balancer: ${this.o.service} backends = ${text}`);
  }

  /** Requests per node per second since the last measure; printed as the `terminal` option says. */
  traffic(): void {
    const now = this.now();
    const from = this.trafficFrom;
    this.trafficFrom = now;
    if (this.quiet) return;
    const byNode = new Map<string, number>();
    let failed = 0;
    let ok = 0;
    const recs = this.o.records();
    // Records are appended in completion order; walk back only over the last window.
    for (let i = recs.length - 1; i >= 0; i--) {
      const r = recs[i]!;
      if (r.endMs < from) break;
      if (r.endMs >= now) continue;
      if (r.ok) {
        ok++;
        const n = r.node ?? '?';
        byNode.set(n, (byNode.get(n) ?? 0) + 1);
      } else failed++;
    }
    const secs = Math.max(0.001, (now - from) / 1000);
    const nodes = [...byNode.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    if (this.o.terminal === false) {
      const shape = `${nodes.map(([n]) => n).join(' ')}${failed > 0 ? ' failing' : ''}`;
      const last = this.lastTraffic;
      if (last !== undefined && last.shape === shape && now - last.atMs < TRAFFIC_QUIET_MAX_MS) return;
      this.lastTraffic = { shape, atMs: now };
    }
    const per = nodes.map(([n, c]) => `${n} ${Math.round(c / secs)}`).join(' | ');
    this.o.printer.line(`traffic: ${Math.round(ok / secs)} req/s  [${per || 'no answers'}]  failed ${failed}`);
  }

  /** Silence the periodic lines (while the final summary prints). */
  mute(): void {
    this.quiet = true;
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.offMember();
  }
}
