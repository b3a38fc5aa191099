// Performance over time, the pure part: what a node samples (FIELDS), the bounded history it
// keeps them in, the downsampled series it answers a `kodama-metrics` query with (encoded to fit
// Serf's query response limit), and the per-role view an asker builds from the answers
// (min/p50/p95/max per time step, and the nodes that stand out). No clock, no I/O: times arrive
// as arguments (Unix milliseconds / seconds).

/** One figure a node samples: its name on the wire and the CLI, unit, and what "different" means. */
export interface FieldSpec {
  name: string;
  unit: string;
  label: string;
  /**
   * The smallest difference from the role's median that can make a node an outlier, whatever
   * the spread: three nodes at 1.0, 1.1 and 1.3 % CPU are all idle, not one odd one out.
   */
  minSpread: number;
}

export const FIELDS: readonly FieldSpec[] = [
  { name: 'cpu', unit: '%', label: 'host CPU busy', minSpread: 10 },
  { name: 'load', unit: '', label: 'load average (1 min)', minSpread: 0.5 },
  { name: 'mem', unit: '%', label: 'host memory used', minSpread: 10 },
  { name: 'disk', unit: '%', label: 'disk used (/)', minSpread: 10 },
  { name: 'disk_io', unit: 'B/s', label: 'disk read+write', minSpread: 1 << 20 },
  { name: 'net', unit: 'B/s', label: 'network in+out (not lo)', minSpread: 1 << 20 },
  { name: 'rss', unit: 'MiB', label: 'agent RSS', minSpread: 20 },
  { name: 'proc_cpu', unit: '%', label: 'agent CPU (of one core)', minSpread: 10 },
  { name: 'loop_delay', unit: 'ms', label: 'agent event-loop delay (max)', minSpread: 50 },
];

export const FIELD_NAMES: readonly string[] = FIELDS.map((f) => f.name);
export const FIELD_INDEX: ReadonlyMap<string, number> = new Map(FIELDS.map((f, i) => [f.name, i]));

/**
 * A ring of samples: per sample its time and one value per field (NaN = not measured). An hour
 * at 10 s is 360 samples × 9 fields: 13 KB of Float32 and 3 KB of times.
 */
export class History {
  readonly capacity: number;
  private readonly times: Float64Array;
  private readonly values: Float32Array;
  private next = 0;
  private count = 0;

  constructor(capacity: number) {
    this.capacity = Math.max(1, Math.floor(capacity));
    this.times = new Float64Array(this.capacity);
    this.values = new Float32Array(this.capacity * FIELDS.length);
  }

  get size(): number {
    return this.count;
  }

  /** `values` in FIELDS order; the oldest sample goes when full. */
  push(tMs: number, values: ArrayLike<number>): void {
    const at = this.next;
    this.times[at] = tMs;
    for (let f = 0; f < FIELDS.length; f++) this.values[at * FIELDS.length + f] = values[f] ?? NaN;
    this.next = (at + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** Visits the samples oldest first. */
  forEach(fn: (tMs: number, field: (f: number) => number) => void): void {
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) {
      const at = (start + i) % this.capacity;
      fn(this.times[at]!, (f) => this.values[at * FIELDS.length + f]!);
    }
  }
}

/** A node's answer: `n` buckets of `stepS` seconds ending at `endS`, one array per field (NaN = no sample). */
export interface Series {
  endS: number;
  stepS: number;
  n: number;
  fields: Map<string, Float64Array>;
}

/** Bucket i covers [endS - (n - i)·stepS, endS - (n - i - 1)·stepS): the mean of its samples. */
export function downsample(h: History, endS: number, stepS: number, n: number, fields: readonly string[]): Series {
  const idx = fields.map((f) => FIELD_INDEX.get(f)!);
  const sums = fields.map(() => new Float64Array(n));
  const counts = fields.map(() => new Uint16Array(n));
  const startMs = (endS - n * stepS) * 1000;
  const stepMs = stepS * 1000;
  h.forEach((t, v) => {
    const b = Math.floor((t - startMs) / stepMs);
    if (b < 0 || b >= n) return;
    for (let i = 0; i < idx.length; i++) {
      const x = v(idx[i]!);
      if (Number.isNaN(x)) continue;
      sums[i]![b]! += x;
      counts[i]![b]!++;
    }
  });
  const out = new Map<string, Float64Array>();
  fields.forEach((f, i) => {
    const arr = new Float64Array(n);
    for (let b = 0; b < n; b++) arr[b] = counts[i]![b]! > 0 ? sums[i]![b]! / counts[i]![b]! : NaN;
    out.set(f, arr);
  });
  return { endS, stepS, n, fields: out };
}

/** Coarser: every `k` buckets become one (their mean), for an answer that must be smaller. */
export function coarsen(s: Series, k: number): Series {
  const n = Math.ceil(s.n / k);
  const fields = new Map<string, Float64Array>();
  for (const [f, arr] of s.fields) {
    const out = new Float64Array(n);
    // Groups end at endS: the first group may be short.
    const offset = n * k - s.n;
    for (let b = 0; b < n; b++) {
      let sum = 0;
      let c = 0;
      for (let j = b * k - offset; j < (b + 1) * k - offset; j++) {
        const x = j >= 0 ? arr[j]! : NaN;
        if (!Number.isNaN(x)) {
          sum += x;
          c++;
        }
      }
      out[b] = c > 0 ? sum / c : NaN;
    }
    fields.set(f, out);
  }
  return { endS: s.endS, stepS: s.stepS * k, n, fields };
}

// ---------------------------------------------------------------------------------------------
// The wire form (JSON text, ~2.7 bytes a value): {"e":endS,"s":stepS,"n":n,"f":[[k,"b64"],…]}
// with one entry per field the asker named, in its order (so no names ride along). Each value is
// a uint16 q in base64 (little-endian), worth q·10^k; 65535 = no sample. k is chosen per field so
// that its largest value fits: precision is about 1/65534 of the series' largest value.

const MISSING = 0xffff;

function exponentFor(arr: Float64Array): number {
  let max = 0;
  for (const x of arr) if (!Number.isNaN(x)) max = Math.max(max, Math.abs(x));
  if (max === 0) return 0;
  return Math.ceil(Math.log10(max / (MISSING - 1)));
}

/** `fields`: the asker's list, in its order; a field the series lacks goes as all missing. */
export function encodeSeries(s: Series, fields: readonly string[] = [...s.fields.keys()]): string {
  const f: [number, string][] = [];
  for (const name of fields) {
    const arr = s.fields.get(name) ?? new Float64Array(s.n).fill(NaN);
    const k = Math.max(-3, exponentFor(arr));
    const q = new Uint16Array(arr.length);
    const scale = 10 ** k;
    for (let i = 0; i < arr.length; i++) {
      const x = arr[i]!;
      q[i] = Number.isNaN(x) ? MISSING : Math.max(0, Math.min(MISSING - 1, Math.round(x / scale)));
    }
    f.push([k, Buffer.from(q.buffer, q.byteOffset, q.byteLength).toString('base64')]);
  }
  return JSON.stringify({ e: s.endS, s: s.stepS, n: s.n, f });
}

/**
 * Undefined for anything that is not a series of `fields` (a serf agent's or a hostile answer).
 * An answer with fewer fields (an older agent answering a count) fills the first ones; the rest
 * are missing.
 */
export function decodeSeries(text: string, fields: readonly string[]): Series | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { e, s, n, f } = v as { e?: unknown; s?: unknown; n?: unknown; f?: unknown };
  if (!Number.isInteger(e) || !Number.isInteger(s) || (s as number) <= 0 || !Number.isInteger(n) || (n as number) < 0 || (n as number) > 10_000) return undefined;
  if (!Array.isArray(f) || f.length > fields.length) return undefined;
  const out = new Map<string, Float64Array>();
  for (const name of fields.slice(f.length)) out.set(name, new Float64Array(n as number).fill(NaN));
  for (let i = 0; i < f.length; i++) {
    const val: unknown = f[i];
    if (!Array.isArray(val) || val.length !== 2) return undefined;
    const [k, b64] = val as [unknown, unknown];
    if (!Number.isInteger(k) || Math.abs(k as number) > 20 || typeof b64 !== 'string') return undefined;
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length !== (n as number) * 2) return undefined;
    const arr = new Float64Array(n as number);
    const scale = 10 ** (k as number);
    for (let j = 0; j < arr.length; j++) {
      const q = bytes.readUInt16LE(j * 2);
      arr[j] = q === MISSING ? NaN : q * scale;
    }
    out.set(fields[i]!, arr);
  }
  return { endS: e as number, stepS: s as number, n: n as number, fields: out };
}

/** Bytes of encodeSeries for `n` buckets of `fields` fields, at most (the exponents' widths vary). */
export function encodedSizeAtMost(fields: number, n: number): number {
  const b64 = 4 * Math.ceil((2 * n) / 3);
  return '{"e":0000000000,"s":000000,"n":00000,"f":[]}'.length + fields * ('[-3,""],'.length + b64);
}

/** The most buckets whose answer fits `maxBytes`. */
export function pointsThatFit(fields: number, maxBytes: number): number {
  let n = 1;
  while (encodedSizeAtMost(fields, n + 1) <= maxBytes && n < 10_000) n++;
  return n;
}

/**
 * The grid an asker requests for a window: a step that is a whole number of sampling intervals
 * and gives no more buckets than fit one answer; the end is aligned to the step (so all nodes'
 * buckets line up) and covers the current, partial bucket.
 */
export function planWindow(nowS: number, sinceS: number, sampleS: number, maxPoints: number): { endS: number; stepS: number; n: number } {
  const want = Math.max(1, Math.ceil(sinceS / sampleS));
  const per = Math.max(1, Math.ceil(want / maxPoints));
  const stepS = per * sampleS;
  const n = Math.max(1, Math.ceil(sinceS / stepS));
  const endS = Math.ceil(nowS / stepS) * stepS;
  return { endS, stepS, n };
}

// ---------------------------------------------------------------------------------------------
// The asker's view of a role

export interface StepStats {
  /** Start of the bucket, Unix seconds. */
  t: number;
  /** Nodes with a value in this bucket. */
  count: number;
  min: number;
  p50: number;
  p95: number;
  max: number;
}

export interface Outlier {
  node: string;
  /** The node's mean over the window, and the role's median of those means. */
  value: number;
  median: number;
  /** The node's own value per step (NaN: no sample), to draw it beside the role's band. */
  steps?: number[];
}

export interface FieldView {
  field: string;
  unit: string;
  label: string;
  steps: StepStats[];
  /** Over the whole window: the same four figures over every node's every bucket. */
  window: Omit<StepStats, 't'>;
  outliers: Outlier[];
  /** Per node, its mean over the window (for graphs and JSON). */
  nodes: Record<string, number>;
}

export interface RoleView {
  role: string;
  nodes: string[];
  endS: number;
  stepS: number;
  n: number;
  fields: FieldView[];
}

/** Nearest-rank percentile of sorted values. */
function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function statsOf(values: number[]): Omit<StepStats, 't'> {
  const s = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return { count: s.length, min: s[0] ?? NaN, p50: pct(s, 50), p95: pct(s, 95), max: s[s.length - 1] ?? NaN };
}

/** A node's value for the asker's bucket starting at t: its own bucket holding t's midpoint. */
function valueAt(s: Series, field: string, t: number, stepS: number): number {
  const arr = s.fields.get(field);
  if (arr === undefined) return NaN;
  const mid = t + stepS / 2;
  const b = Math.floor((mid - (s.endS - s.n * s.stepS)) / s.stepS);
  return b >= 0 && b < s.n ? arr[b]! : NaN;
}

function mean(xs: number[]): number {
  const v = xs.filter((x) => !Number.isNaN(x));
  return v.length === 0 ? NaN : v.reduce((a, b) => a + b, 0) / v.length;
}

/**
 * The outliers of one field: nodes whose mean over the window is further from the median of
 * the means than 3 robust deviations (1.4826·MAD), and at least the field's minSpread. Needs 3
 * nodes: with two, neither is "the odd one".
 */
export function outliersOf(means: Record<string, number>, minSpread: number): Outlier[] {
  const entries = Object.entries(means).filter(([, v]) => !Number.isNaN(v));
  if (entries.length < 3) return [];
  const sorted = entries.map(([, v]) => v).sort((a, b) => a - b);
  const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  const devs = sorted.map((v) => Math.abs(v - median)).sort((a, b) => a - b);
  const mad = devs.length % 2 === 1 ? devs[(devs.length - 1) / 2]! : (devs[devs.length / 2 - 1]! + devs[devs.length / 2]!) / 2;
  const bound = Math.max(3 * 1.4826 * mad, minSpread);
  return entries
    .filter(([, v]) => Math.abs(v - median) > bound)
    .map(([node, value]) => ({ node, value, median }))
    .sort((a, b) => Math.abs(b.value - b.median) - Math.abs(a.value - a.median));
}

/** One role's view from its nodes' answers, on the asker's grid. */
export function roleView(role: string, answers: ReadonlyMap<string, Series>, grid: { endS: number; stepS: number; n: number }, fields: readonly string[]): RoleView {
  const nodes = [...answers.keys()].sort();
  const start = grid.endS - grid.n * grid.stepS;
  const views: FieldView[] = [];
  for (const field of fields) {
    const spec = FIELDS[FIELD_INDEX.get(field)!]!;
    const steps: StepStats[] = [];
    const perNode = new Map(nodes.map((n) => [n, [] as number[]]));
    for (let b = 0; b < grid.n; b++) {
      const t = start + b * grid.stepS;
      const vals = nodes.map((n) => {
        const x = valueAt(answers.get(n)!, field, t, grid.stepS);
        perNode.get(n)!.push(x);
        return x;
      });
      steps.push({ t, ...statsOf(vals) });
    }
    const all = [...perNode.values()].flat();
    const means = Object.fromEntries(nodes.map((n) => [n, mean(perNode.get(n)!)]));
    const outliers = outliersOf(means, spec.minSpread).map((o) => ({ ...o, steps: perNode.get(o.node)! }));
    views.push({ field, unit: spec.unit, label: spec.label, steps, window: statsOf(all), outliers, nodes: means });
  }
  return { role, nodes, endS: grid.endS, stepS: grid.stepS, n: grid.n, fields: views };
}
