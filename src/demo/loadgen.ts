// A bounded HTTP load generator: `concurrency` workers each send one request at a time (keep-
// alive), optionally pausing `pauseMs` between requests, until stop() or `durationMs` or
// `maxRequests`. Every request is recorded (start, end, status, which node answered), so tests
// can ask "how many failed, and when" and the demo can show the live distribution.
import { Agent, request } from 'node:http';

export interface LoadOptions {
  /** http://host:port/path */
  url: string;
  concurrency: number;
  /** Hard bound on the run (ms). */
  durationMs: number;
  /** Hard bound on requests sent (default 1e6). */
  maxRequests?: number;
  /** Pause per worker between requests (ms), to keep the rate moderate (default 0). */
  pauseMs?: number;
  /** Per-request timeout (ms, default 5000); a timeout is a failure. */
  timeoutMs?: number;
}

export interface RequestRecord {
  /** Date.now() when sent and when finished. */
  startMs: number;
  endMs: number;
  /** endMs - startMs at sub-millisecond resolution (performance.now()). */
  latencyMs: number;
  ok: boolean;
  status: number;
  /** x-kodama-node of the answer. */
  node: string | undefined;
  error: string | undefined;
}

export interface LoadSummary {
  sent: number;
  ok: number;
  failed: number;
  /** ok answers per node */
  byNode: Record<string, number>;
  /** Failures with when they happened (first 20). */
  failures: RequestRecord[];
  durationMs: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadRun {
  readonly records: readonly RequestRecord[];
  /** Stop sending, wait for in-flight requests, summarise. */
  stop(): Promise<LoadSummary>;
  /** Resolves when the run ends on its own bounds (or after stop()). */
  readonly done: Promise<LoadSummary>;
}

export function summarise(records: readonly RequestRecord[], from = 0, to = Infinity): LoadSummary {
  const rs = records.filter((r) => r.startMs >= from && r.startMs < to);
  const byNode: Record<string, number> = {};
  let ok = 0;
  const failures: RequestRecord[] = [];
  for (const r of rs) {
    if (r.ok) {
      ok++;
      if (r.node !== undefined) byNode[r.node] = (byNode[r.node] ?? 0) + 1;
    } else if (failures.length < 20) failures.push(r);
  }
  const lat = rs.filter((r) => r.ok).map((r) => r.latencyMs).sort((a, b) => a - b);
  const pct = (p: number): number => (lat.length === 0 ? 0 : lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0);
  const start = rs[0]?.startMs ?? 0;
  const end = rs.reduce((m, r) => Math.max(m, r.endMs), start);
  const durationMs = Math.max(1, end - start);
  return {
    sent: rs.length,
    ok,
    failed: rs.length - ok,
    byNode,
    failures,
    durationMs,
    requestsPerSec: (ok * 1000) / durationMs,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
  };
}

export function startLoad(opts: LoadOptions): LoadRun {
  const records: RequestRecord[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const maxRequests = opts.maxRequests ?? 1_000_000;
  const deadline = Date.now() + opts.durationMs;
  const timeoutMs = opts.timeoutMs ?? 5000;
  let stopping = false;
  let sent = 0;

  const once = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const rec: RequestRecord = { startMs: Date.now(), endMs: 0, latencyMs: 0, ok: false, status: 0, node: undefined, error: undefined };
      let settled = false;
      const finish = (err?: string): void => {
        if (settled) return;
        settled = true;
        rec.endMs = Date.now();
        rec.latencyMs = performance.now() - t0;
        if (err !== undefined) rec.error = err;
        rec.ok = err === undefined && rec.status >= 200 && rec.status < 400;
        records.push(rec);
        resolve();
      };
      const req = request(opts.url, { agent, timeout: timeoutMs }, (res) => {
        rec.status = res.statusCode ?? 0;
        const node = res.headers['x-kodama-node'];
        rec.node = typeof node === 'string' ? node : undefined;
        res.resume();
        res.on('end', () => finish(rec.status >= 200 && rec.status < 400 ? undefined : `HTTP ${rec.status}`));
        res.on('error', (e) => finish(e.message));
      });
      req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      req.on('error', (e) => finish((e as NodeJS.ErrnoException).code ?? e.message));
      req.end();
    });

  const worker = async (): Promise<void> => {
    while (!stopping && sent < maxRequests && Date.now() < deadline) {
      sent++;
      await once();
      if ((opts.pauseMs ?? 0) > 0 && !stopping) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  };
  const workers = Array.from({ length: opts.concurrency }, () => worker());
  const done = Promise.all(workers).then(() => {
    agent.destroy();
    return summarise(records);
  });
  return {
    records,
    done,
    stop() {
      stopping = true;
      return done;
    },
  };
}
