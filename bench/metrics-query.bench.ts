// What one `kodama metrics` read costs a cluster, in the simulator: N nodes (default 100; sizes
// KODAMA_BENCH_METRICS_SIZES, e.g. 100,500), Serf on the real membership core as the agent wires
// it (src/sim/news.ts), each holding an hour of samples (360 × 9 figures, a random walk) and
// answering `kodama-metrics` with the agent's own code path (downsample → coarsen to fit →
// encodeSeries). One node asks for the last 15 minutes, as `kodama metrics -since 15m` does.
//
// Figures: answers received of expected and when the last arrived; answer size; the bytes the
// whole cluster sent in the 20 s holding the query, above the same 20 s idle (so: the query's
// gossip, the answers, and nothing else); the asker's CPU to turn N answers into the per-role view.
// Virtual time; deterministic for a seed (KODAMA_SEED).

import { performance } from 'node:perf_hooks';
import { NewsSim } from '../src/sim/news.ts';
import { DEFAULT_SEED } from '../src/sim/cluster.ts';
import { seedFromEnv, SeededRandom } from '../src/sim/random.ts';
import { FIELDS, FIELD_INDEX, FIELD_NAMES, History, coarsen, downsample, encodeSeries } from '../src/metrics/series.ts';
import { METRICS_QUERY, parseMetricsRequest } from '../src/metrics/protocol.ts';
import { buildMetricsReport, metricsRequest } from '../src/metrics/report.ts';

const RESPONSE_OVERHEAD_BYTES = 64;
const WINDOW_MS = 20_000;
/** Virtual ms → Unix time for the histories (the grid is in Unix seconds). */
const EPOCH_MS = 1_796_000_000_000;

function fill(h: History, rnd: SeededRandom, endMs: number): void {
  const v = FIELDS.map((_, i) => 1 + i * 10);
  for (let t = endMs - h.capacity * 10_000; t < endMs; t += 10_000) {
    for (let i = 0; i < v.length; i++) v[i] = Math.max(0, v[i]! * (0.9 + 0.2 * rnd.float()) + rnd.float());
    h.push(t, v);
  }
}

/** The agent's answer (src/metrics/local.ts) for one node's history. */
function answerFor(h: History, node: string, payload: Uint8Array, limit: number): Uint8Array | undefined {
  const req = parseMetricsRequest(new TextDecoder().decode(payload), FIELD_NAMES);
  if (typeof req === 'string') return undefined;
  let s = downsample(h, req.endS, req.stepS, req.n, req.fields.filter((f) => FIELD_INDEX.has(f)));
  let text = encodeSeries(s, req.fields);
  const max = limit - RESPONSE_OVERHEAD_BYTES - Buffer.byteLength(node);
  for (let k = 0; Buffer.byteLength(text) > max && s.n > 1 && k < 16; k++) {
    s = coarsen(s, 2);
    text = encodeSeries(s, req.fields);
  }
  return new TextEncoder().encode(text);
}

interface Row {
  n: number;
  answered: number;
  lastAnswerMs: number;
  answerBytesMean: number;
  answerBytesMax: number;
  extraKB: number;
  extraPerNodeKB: number;
  idleBytesPerNodeS: number;
  reportMs: number;
}

function runSize(n: number, seed: number): Row {
  const rnd = new SeededRandom(seed).fork('metrics-history');
  const histories = new Map<string, History>();
  const sim = new NewsSim({
    seed,
    eagerGossipNodes: 0,
    network: { latencyMinMs: 1, latencyMaxMs: 5 },
    answer: (node, name, payload) => (name === METRICS_QUERY ? answerFor(histories.get(node)!, node, payload, 1024) : undefined),
  });
  sim.build(n, 10_000);
  const nowMs = (): number => EPOCH_MS + sim.cluster.clock.now();
  for (const node of sim.live()) {
    const h = new History(360);
    fill(h, rnd.fork(node.name), nowMs());
    histories.set(node.name, h);
  }
  const idle = sim.measurePackets(() => sim.cluster.runFor(WINDOW_MS));
  const origin = sim.live()[0]!.name;
  const { grid, payload } = metricsRequest(nowMs() / 1000, 900);
  let rec: ReturnType<NewsSim['query']> | undefined;
  const busy = sim.measurePackets(() => {
    rec = sim.query(origin, { name: METRICS_QUERY, payload, timeoutMs: 5000 });
    sim.cluster.runFor(WINDOW_MS);
  });
  const r = rec!;
  const sizes = [...r.responses.values()].map((x) => x.bytes);
  const last = Math.max(...[...r.responses.values()].map((x) => x.atMs - r.sentMs));
  // The asker's work: N answers (as the agent has them, text) into the per-role view.
  const members = sim.live().map((x) => ({ name: x.name, tags: { role: 'web' } }));
  const texts = new Map(members.map((m) => [m.name, new TextDecoder().decode(answerFor(histories.get(m.name)!, m.name, payload, 1024)!)]));
  const t0 = performance.now();
  const report = buildMetricsReport(members, texts, grid);
  const reportMs = performance.now() - t0;
  if (report.roles[0]?.nodes.length !== n) throw new Error(`report has ${report.roles[0]?.nodes.length} nodes, expected ${n}`);
  const extra = (busy.bytesPerNodeS - idle.bytesPerNodeS) * n * (WINDOW_MS / 1000);
  sim.shutdown();
  return {
    n,
    answered: r.responses.size,
    lastAnswerMs: last,
    answerBytesMean: sizes.reduce((a, b) => a + b, 0) / Math.max(1, sizes.length),
    answerBytesMax: Math.max(...sizes),
    extraKB: extra / 1024,
    extraPerNodeKB: extra / 1024 / n,
    idleBytesPerNodeS: idle.bytesPerNodeS,
    reportMs,
  };
}

export default async function run(): Promise<void> {
  const seed = seedFromEnv(DEFAULT_SEED);
  const sizes = (process.env['KODAMA_BENCH_METRICS_SIZES'] ?? '100').split(',').map(Number).filter((x) => x > 1);
  console.log(`one kodama metrics read (-since 15m, every figure) in a simulated LAN cluster, 1–5 ms one-way, seed ${seed}`);
  console.log(['N', 'answered', 'last answer ms', 'answer B mean/max', 'extra KB (cluster)', 'extra KB/node', 'idle B/node/s', 'report ms'].join('\t'));
  for (const n of sizes) {
    const r = runSize(n, seed);
    console.log(
      [r.n, `${r.answered}/${r.n}`, r.lastAnswerMs.toFixed(0), `${r.answerBytesMean.toFixed(0)}/${r.answerBytesMax}`, r.extraKB.toFixed(1), r.extraPerNodeKB.toFixed(2), r.idleBytesPerNodeS.toFixed(0), r.reportMs.toFixed(1)].join('\t'),
    );
  }
}
