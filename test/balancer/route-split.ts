// The route scenario of issue 6 against any Balancer driver, as the balancer role runs it:
// planService (with the route) → driver.setBackends, under steady load from the demo load
// generator. blue 100 → blue 10 / green 90 → green 100 (blue drained, removed when idle).
// Shared by the HAProxy and the embedded-proxy tests; returns the figures, each test asserts.
import type { TestContext } from 'node:test';
import { decodeMembers, planService } from '../../src/discovery/backends.ts';
import type { MemberView, ServicePlan, TrackedBackend } from '../../src/discovery/backends.ts';
import type { Balancer } from '../../src/discovery/types.ts';
import type { RouteEntry } from '../../src/deploy/types.ts';
import { startLoad, summarise } from '../../src/demo/loadgen.ts';
import type { LoadSummary } from '../../src/demo/loadgen.ts';
import { startWebServer } from '../../src/demo/web-server.ts';
import type { WebServer } from '../../src/demo/web-server.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

const SPEC = { service: 'web', minBackends: 1, drainTimeoutMs: 10_000 };

function route(weights: Record<string, number>, ltime: number): RouteEntry {
  return { service: 'web', tag: 'color', weights, by: 'test', ltime };
}

export interface RouteSplitFigures {
  /** Requests answered in the 10/90 window, and green's share of them. */
  splitRequests: number;
  greenShare: number;
  /** Weights the driver was given for the 10/90 split, by backend id. */
  splitWeights: Record<string, number>;
  /** Backends with a request in flight when blue went to drain (HAProxy/embedded own count). */
  blueStatsAtDrain: number;
  /** Of the driver's own per-backend request counts: blue's growth between drain and idle. */
  blueStatsDuringDrain: number;
  /** Blue web servers' own counts: growth from drain to idle (in flight then), and after removal. */
  blueServerDuringDrain: number;
  blueServerAfterRemoval: number;
  /** Answers from blue in the load records that started after the removal. */
  blueAnswersAfterRemoval: number;
  drainMs: number;
  removedChanges: string[];
  /** Whole run. */
  load: LoadSummary;
  /** Driver figures of green at the end (errors must be 0). */
  greenErrors: number;
  greenRequests: number;
  /** What the driver serves after the route went back to blue 100 and green drained. */
  rollbackServed: string[];
}

/**
 * Run the scenario against `balancer` (already started with frontend `web` in http mode),
 * reached at `url`. The backends are 2 blue and 2 green demo web servers on 127.0.0.1.
 */
export async function runRouteSplit(
  t: TestContext,
  balancer: Balancer,
  url: string,
  opts: { splitRequests?: number; direct?: boolean } = {},
): Promise<RouteSplitFigures> {
  const names = ['b1', 'b2', 'g1', 'g2'];
  const servers = await Promise.all(names.map((node) => startWebServer({ node, delayMs: 5 })));
  t.after(() => Promise.all(servers.map((w) => w.close())));
  const byName = new Map<string, WebServer>(servers.map((w) => [w.node, w]));
  const members: MemberView[] = servers.map((w) => ({
    name: w.node,
    addr: { ip: '127.0.0.1' },
    tags: { color: w.node.startsWith('b') ? 'blue' : 'green', 's:web': String(w.port) },
    status: 'alive',
  }));
  const decoded = decodeMembers(members);
  let state = new Map<string, TrackedBackend>();
  const apply = async (r: RouteEntry, active?: Map<string, number>): Promise<ServicePlan> => {
    const plan = planService(SPEC, decoded, state, Date.now(), active, r);
    state = plan.state;
    await balancer.setBackends('web', plan.backends);
    return plan;
  };
  const blueServed = (): number => (byName.get('b1')?.requests ?? 0) + (byName.get('b2')?.requests ?? 0);
  const blueStats = async (): Promise<{ total: number; active: number }> => {
    const st = await balancer.stats('web');
    let total = 0;
    let active = 0;
    for (const s of st) {
      if (!s.id.startsWith('b')) continue;
      total += s.totalSessions;
      active += s.activeSessions;
    }
    return { total, active };
  };

  await apply(route({ blue: 100, green: 0 }, 1));
  const run = startLoad({ url, concurrency: 4, durationMs: 45_000, pauseMs: 2, timeoutMs: 5000 });
  t.after(() => run.stop());
  await waitFor('blue to serve', () => (byName.get('b1')?.requests ?? 0) > 10 && (byName.get('b2')?.requests ?? 0) > 10);

  // 10 / 90: measured from a moment after the switch (requests sent before it may still be
  // finishing on blue), over at least `splitRequests` answers.
  // (direct: no split — green was never served when it takes 100 %, as a deploy's single step.)
  let splitWeights: Record<string, number> = {};
  let window = summarise([]);
  if (opts.direct !== true) {
    const split = await apply(route({ blue: 10, green: 90 }, 2));
    splitWeights = Object.fromEntries(split.backends.map((b) => [b.id, b.weight]));
    const from = Date.now() + 100;
    const want = opts.splitRequests ?? 600;
    await waitFor(`${want} answers after the split`, () => summarise(run.records, from).ok >= want, 20_000);
    window = summarise(run.records, from);
  }
  const green = (window.byNode.g1 ?? 0) + (window.byNode.g2 ?? 0);

  // green 100: blue drains (in flight finishes, nothing new), leaves once idle.
  await apply(route({ blue: 0, green: 100 }, 3));
  const drainAt = Date.now();
  const atDrain = await blueStats();
  const serverAtDrain = blueServed();
  let atIdle = atDrain;
  await waitFor('blue to be idle', async () => {
    atIdle = await blueStats();
    return atIdle.active === 0;
  });
  const idle = await apply(route({ blue: 0, green: 100 }, 3), new Map((await balancer.stats('web')).map((s) => [s.id, s.activeSessions])));
  const removedAt = Date.now();
  const serverAtRemoval = blueServed();
  await sleep(1000);
  const serverLater = blueServed();
  const end = await balancer.stats('web');
  const after = summarise(run.records, removedAt, Date.now());
  // And back (a rollback): blue is added again, green drains and leaves once idle.
  await apply(route({ blue: 100, green: 0 }, 4));
  await waitFor('green to be idle', async () => (await balancer.stats('web')).filter((s) => s.id.startsWith('g')).every((s) => s.activeSessions === 0));
  const back = await apply(route({ blue: 100, green: 0 }, 4), new Map((await balancer.stats('web')).map((s) => [s.id, s.activeSessions])));
  const rollbackServed = back.backends.map((b) => `${b.id}:${b.state}`);
  await waitFor('blue to answer again', () => summarise(run.records, Date.now() - 300).byNode.b1 !== undefined);
  const load = await run.stop();
  return {
    splitRequests: window.ok,
    greenShare: window.ok === 0 ? 0 : green / window.ok,
    splitWeights,
    blueStatsAtDrain: atDrain.active,
    blueStatsDuringDrain: atIdle.total - atDrain.total,
    blueServerDuringDrain: serverAtRemoval - serverAtDrain,
    blueServerAfterRemoval: serverLater - serverAtRemoval,
    blueAnswersAfterRemoval: (after.byNode.b1 ?? 0) + (after.byNode.b2 ?? 0),
    drainMs: removedAt - drainAt,
    removedChanges: idle.changes.filter((c) => c.kind === 'removed').map((c) => `${c.backend.id}(${c.kind === 'removed' ? c.reason : ''})`),
    load,
    greenErrors: end.filter((s) => s.id.startsWith('g')).reduce((n, s) => n + s.errors, 0),
    greenRequests: end.filter((s) => s.id.startsWith('g')).reduce((n, s) => n + s.totalSessions, 0),
    rollbackServed,
  };
}
