// The `kodama-metrics` query: the asker names the grid (end, step, buckets) and the fields; every
// kodama agent that matches the query's filters answers with its series on that grid
// (series.ts encodeSeries). JSON both ways, small: {"e":endS,"s":stepS,"n":n,"f":9}. Every node
// forwards a query about a dozen times (Serf's gossip), so its size counts a hundredfold: `f` is
// a count of the canonical fields (FIELDS, which only ever grow at the end) rather than their
// names when it can be; a list of names works too. An agent that knows fewer fields answers the
// ones it knows (its answer is shorter), so versions can mix.

export const METRICS_QUERY = 'kodama-metrics';

export interface MetricsRequest {
  endS: number;
  stepS: number;
  n: number;
  fields: string[];
}

/** `canonical`: the field order both sides share (FIELD_NAMES). */
export function encodeMetricsRequest(r: MetricsRequest, canonical: readonly string[]): string {
  const prefix = r.fields.length <= canonical.length && r.fields.every((f, i) => canonical[i] === f);
  return JSON.stringify({ e: r.endS, s: r.stepS, n: r.n, f: prefix ? r.fields.length : r.fields });
}

/** The request, or why it is refused (a string). `known`: the fields this agent samples. */
export function parseMetricsRequest(text: string, known: readonly string[]): MetricsRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'payload is not JSON';
  }
  if (typeof v !== 'object' || v === null) return 'payload must be an object {e, s, n, f}';
  const { e, s, n, f } = v as { e?: unknown; s?: unknown; n?: unknown; f?: unknown };
  if (!Number.isInteger(e) || (e as number) < 0) return "'e' (end, Unix seconds) must be a whole number";
  if (!Number.isInteger(s) || (s as number) < 1 || (s as number) > 86_400) return "'s' (step, seconds) must be 1 to 86400";
  if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 2000) return "'n' (buckets) must be 1 to 2000";
  if (Number.isInteger(f)) {
    if ((f as number) < 1 || (f as number) > 64) return "'f' as a count must be 1 to 64";
    // The first f canonical fields; an older agent answers those it knows.
    return { endS: e as number, stepS: s as number, n: n as number, fields: known.slice(0, f as number) };
  }
  const fields = f === undefined ? [...known] : f;
  if (!Array.isArray(fields) || fields.length === 0 || !fields.every((x) => typeof x === 'string')) return "'f' must be a list of field names";
  if (fields.length > 64 || fields.some((x) => x.length > 32)) return "'f' names too many or too long fields";
  // An agent of an older version may not know a newer field: it answers that one as all missing.
  if (!fields.some((x) => known.includes(x))) return `no field it samples (${fields.join(', ')}); known: ${known.join(', ')}`;
  return { endS: e as number, stepS: s as number, n: n as number, fields: fields as string[] };
}
