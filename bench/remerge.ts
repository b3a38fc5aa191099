// Re-merge after a partition heals, serf vs kodama on a real network: `npm run bench -- remerge`
// (needs root: network namespaces; see test/netns/net.ts). Only runs when named (it is long).
//
// For each seed (default 3 runs) and each cluster — serf-only, kodama-only, mixed (3 serf +
// 3 kodama) — the scenario of test/netns/scenario.ts: 6 agents, joined in a seeded order; a
// healthy window (after the join gossip settled) counts UDP packets; cut 3 | 3 (seeded sides, the same for every cluster of a
// seed); once each side sees the other failed the cut is kept for the partition time (45 s);
// heal; poll every node's members every 150 ms until each sees all 6 alive. Printed: re-merge
// time after heal (max over nodes) per run, kodama beside serf, and UDP packets per node per
// second while healthy and while the other side was failed (an OUTPUT counter in each node's
// namespace; "to failed" = of those, sent to the other side's addresses).
//
// Flags (after `remerge`): -partition 45s   -runs 3   -seed N (first seed; KODAMA_SEED too)
//   -clusters serf,kodama,mixed   -bound 120s (give up waiting for re-merge)
//   -settle 5s (after all alive, before) -baseline 5s (the healthy packet-count window)
// KODAMA_REMERGE_PARTITION_MS sets the partition when -partition is not given.

import { parseDurationMs } from '../src/cli/duration.ts';
import { parseFlags as parseCliFlags } from '../src/cli/flags.ts';
import type { FlagSpec, ParsedFlags } from '../src/cli/flags.ts';
import { SeededRandom } from '../src/sim/random.ts';
import { netnsAvailable } from '../test/netns/net.ts';
import { defaultNames, formatNodes, runRemerge, type RemergeResult } from '../test/netns/scenario.ts';
import type { AgentKind } from '../test/netns/agents.ts';

type Cluster = 'serf' | 'kodama' | 'mixed';
const N = 6;
const KINDS: Record<Cluster, AgentKind[]> = {
  serf: ['serf', 'serf', 'serf', 'serf', 'serf', 'serf'],
  kodama: ['kodama', 'kodama', 'kodama', 'kodama', 'kodama', 'kodama'],
  mixed: ['serf', 'serf', 'serf', 'kodama', 'kodama', 'kodama'],
};
const LABEL: Record<Cluster, string> = { serf: 'serf-only', kodama: 'kodama-only', mixed: 'mixed 3+3' };

interface Flags {
  partitionMs: number;
  runs: number;
  seed: number;
  clusters: Cluster[];
  boundMs: number;
  baselineMs: number;
  settleMs: number;
}

const FLAGS: FlagSpec[] = ['partition', 'runs', 'seed', 'clusters', 'bound', 'baseline', 'settle'].map((name) => ({ name, kind: 'string' }));

/** The project's Go-style flag parser and durations (src/cli), with this bench's defaults. */
function parseFlags(args: string[]): Flags {
  let p: ParsedFlags;
  try {
    p = parseCliFlags(args, FLAGS);
  } catch (e) {
    throw new Error(`remerge: ${(e as Error).message} (flags: -partition 45s -runs 3 -seed N -clusters serf,kodama,mixed -bound 120s -baseline 5s -settle 5s)`);
  }
  const dur = (name: string, fallback: number): number => {
    const v = p.strings.get(name);
    return v === undefined ? fallback : parseDurationMs(v);
  };
  const num = (name: string, fallback: number): number => {
    const v = p.strings.get(name);
    return v === undefined ? fallback : Number(v);
  };
  const f: Flags = {
    partitionMs: dur('partition', Number(process.env['KODAMA_REMERGE_PARTITION_MS'] ?? 45_000)),
    runs: num('runs', 3),
    seed: num('seed', Number(process.env['KODAMA_SEED'] ?? Date.now() % 1_000_000)),
    clusters: (p.strings.get('clusters') ?? 'serf,kodama,mixed').split(',').map((s) => s.trim()) as Cluster[],
    boundMs: dur('bound', 120_000),
    baselineMs: dur('baseline', 5000),
    settleMs: dur('settle', 5000),
  };
  if (!Number.isFinite(f.partitionMs) || f.partitionMs < 0) throw new Error('remerge: -partition must be ≥ 0');
  if (!Number.isInteger(f.runs) || f.runs < 1 || f.runs > 20) throw new Error('remerge: -runs must be 1…20');
  if (!Number.isInteger(f.seed) || f.seed < 0) throw new Error('remerge: -seed must be a non-negative integer');
  if (f.clusters.length === 0 || f.clusters.some((c) => !(c in KINDS))) throw new Error('remerge: -clusters is a list of serf, kodama, mixed');
  return f;
}

function shuffle(r: SeededRandom, xs: number[]): number[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [a[i], a[j]] = [a[j] as number, a[i] as number];
  }
  return a;
}

/** The seed's choices: which nodes are on which side, and the join order. */
function plan(seed: number): { sides: [number[], number[]]; joinOrder: number[] } {
  const r = new SeededRandom(seed);
  const perm = shuffle(r.fork('sides'), [0, 1, 2, 3, 4, 5]);
  const sides: [number[], number[]] = [perm.slice(0, 3).sort((a, b) => a - b), perm.slice(3).sort((a, b) => a - b)];
  return { sides, joinOrder: shuffle(r.fork('join'), [0, 1, 2, 3, 4, 5]) };
}

interface RunOutcome {
  seed: number;
  cluster: Cluster;
  result?: RemergeResult;
  error?: string;
}

const fmtS = (ms: number | undefined): string => (ms === undefined ? '—' : (ms / 1000).toFixed(2));
const mean = (xs: number[]): number | undefined => (xs.length === 0 ? undefined : xs.reduce((s, x) => s + x, 0) / xs.length);

function remergeCell(o: RunOutcome | undefined, boundMs: number): string {
  if (o === undefined) return '';
  if (o.error !== undefined) return 'error';
  const r = o.result as RemergeResult;
  const main = r.overallMs === undefined ? `>${boundMs / 1000}` : fmtS(r.overallMs);
  if (o.cluster !== 'mixed') return main;
  const byKind = (k: AgentKind): string => {
    const xs = r.nodes.filter((x) => x.kind === k).map((x) => x.remergeMs);
    return xs.some((x) => x === undefined) ? '>' : fmtS(Math.max(...(xs as number[])));
  };
  return `${main} (s ${byKind('serf')} / k ${byKind('kodama')})`;
}

export default async function run(args: string[] = []): Promise<void> {
  const f = parseFlags(args);
  const avail = netnsAvailable();
  if (!avail.ok) throw new Error(`remerge needs network namespaces (run as root): ${avail.why ?? ''}`);
  const seeds = Array.from({ length: f.runs }, (_, i) => f.seed + i);
  console.log(
    `re-merge after a 3|3 partition of ${N} agents: partition ${f.partitionMs / 1000} s after each side saw the other failed; ` +
      `${f.runs} run(s), seeds ${seeds.join(', ')}; clusters ${f.clusters.map((c) => LABEL[c]).join(', ')}; re-merge bound ${f.boundMs / 1000} s`,
  );
  const started = Date.now();
  const outcomes: RunOutcome[] = [];
  for (const seed of seeds) {
    const p = plan(seed);
    for (const cluster of f.clusters) {
      const kinds = KINDS[cluster];
      const names = defaultNames(kinds);
      const label = `seed ${seed} ${LABEL[cluster]}`;
      console.log(
        `\n--- ${label}: sides ${p.sides[0].map((i) => names[i]).join(',')} | ${p.sides[1].map((i) => names[i]).join(',')}; join order ${p.joinOrder.map((i) => names[i]).join(' → ')}`,
      );
      try {
        const result = await runRemerge({
          kinds,
          names,
          sides: p.sides,
          joinOrder: p.joinOrder,
          partitionMs: f.partitionMs,
          remergeBoundMs: f.boundMs,
          baselineMs: f.baselineMs,
          settleMs: f.settleMs,
          log: (line) => console.log(`${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s [${label}] ${line.trim()}`),
        });
        console.log(formatNodes(result));
        outcomes.push({ seed, cluster, result });
      } catch (e) {
        console.log(`${label} FAILED: ${(e as Error).message}`);
        outcomes.push({ seed, cluster, error: (e as Error).message });
      }
    }
  }

  console.log(`\nre-merge time after heal, max over the ${N} nodes (s); partition ${f.partitionMs / 1000} s; ">" = not within ${f.boundMs / 1000} s`);
  const cols = f.clusters.map((c) => LABEL[c]);
  const widths = f.clusters.map((c) => (c === 'mixed' ? 28 : 12));
  const row = (first: string, cells: string[]): string => `${first.padEnd(10)}${cells.map((c, i) => c.padStart(widths[i] ?? 12)).join('  ')}`;
  console.log(row('seed', cols));
  for (const seed of seeds) {
    console.log(row(String(seed), f.clusters.map((c) => remergeCell(outcomes.find((o) => o.seed === seed && o.cluster === c), f.boundMs))));
  }
  console.log(
    row(
      'detect s',
      f.clusters.map((c) => {
        const xs = outcomes.filter((o) => o.cluster === c && o.result !== undefined).map((o) => (o.result as RemergeResult).detectMs);
        return xs.length === 0 ? '—' : `${fmtS(Math.min(...xs))}–${fmtS(Math.max(...xs))}`;
      }),
    ),
  );

  console.log('\nUDP packets sent per node per second (mean over nodes and runs; counted on OUTPUT in each namespace)');
  console.log(`${'cluster'.padEnd(13)}${'kind'.padEnd(8)}${'healthy'.padStart(9)}${'while failed'.padStart(14)}${'to failed side'.padStart(16)}`);
  for (const c of f.clusters) {
    for (const k of ['serf', 'kodama'] as AgentKind[]) {
      const nodes = outcomes.filter((o) => o.cluster === c && o.result !== undefined).flatMap((o) => (o.result as RemergeResult).nodes.filter((x) => x.kind === k));
      if (nodes.length === 0) continue;
      const cell = (xs: (number | undefined)[]): string => {
        const m = mean(xs.filter((x): x is number => x !== undefined));
        return m === undefined ? '—' : m.toFixed(1);
      };
      console.log(
        `${LABEL[c].padEnd(13)}${k.padEnd(8)}${cell(nodes.map((x) => x.healthyPps)).padStart(9)}${cell(nodes.map((x) => x.failedPps)).padStart(14)}${cell(nodes.map((x) => x.failedToCutPps)).padStart(16)}`,
      );
    }
  }
  const failed = outcomes.filter((o) => o.error !== undefined);
  if (failed.length > 0) throw new Error(`${failed.length} run(s) failed: ${failed.map((o) => `seed ${o.seed} ${LABEL[o.cluster]}`).join(', ')}`);
}
