// Every agent's performance history: samples its host and itself every interval into a bounded
// ring (series.ts History), and answers the `kodama-metrics` query with the window asked for,
// downsampled to the asker's grid and made coarser until it fits the response limit. Nothing is
// gossiped: the figures leave the node only when someone asks.

import type { AgentHost } from '../agent/host.ts';
import { HostSampler } from './sampler.ts';
import { FIELD_INDEX, FIELD_NAMES, History, coarsen, downsample, encodeSeries } from './series.ts';
import { METRICS_QUERY, parseMetricsRequest } from './protocol.ts';

/** Serf's response header, the query id and framing, beside the payload and the node's name. */
const RESPONSE_OVERHEAD_BYTES = 64;

export interface MetricsSpec {
  intervalMs: number;
  historyMs: number;
}

export interface LocalMetrics {
  stop(): void;
  /** The history, for tests and the HTTP API's own node. */
  readonly history: History;
}

export function startLocalMetrics(host: AgentHost, spec: MetricsSpec): LocalMetrics {
  const sampler = new HostSampler();
  const history = new History(Math.ceil(spec.historyMs / spec.intervalMs));
  const counts = { samples: 0, queries: 0, bad_queries: 0, coarsened: 0 };
  const tick = (): void => {
    const t = Date.now();
    history.push(t, sampler.sample(t));
    counts.samples++;
  };
  tick();
  const timer = setInterval(tick, spec.intervalMs);
  timer.unref();
  const maxBytes = host.queryResponseSizeLimit - RESPONSE_OVERHEAD_BYTES - Buffer.byteLength(host.nodeName, 'utf8');

  const offs = [
    host.answerQuery(METRICS_QUERY, (q) => {
      counts.queries++;
      const req = parseMetricsRequest(new TextDecoder().decode(q.payload), FIELD_NAMES);
      if (typeof req === 'string') {
        counts.bad_queries++;
        host.logger.logLimited('metrics-bad-query', 60_000, 'WARN', `metrics: query from ${q.sourceNode ?? 'a member'} refused: ${req}`);
        return;
      }
      let s = downsample(history, req.endS, req.stepS, req.n, req.fields.filter((f) => FIELD_INDEX.has(f)));
      let text = encodeSeries(s, req.fields);
      // Too big for one answer (a small query_response_size_limit): fewer, wider buckets.
      for (let k = 0; Buffer.byteLength(text) > maxBytes && s.n > 1 && k < 16; k++) {
        s = coarsen(s, 2);
        text = encodeSeries(s, req.fields);
        counts.coarsened++;
      }
      try {
        q.respond(new TextEncoder().encode(text));
      } catch (e) {
        host.logger.log('DEBUG', `metrics: could not answer: ${(e as Error).message}`);
      }
    }),
    host.addStats(() => ({
      metrics: {
        interval: `${spec.intervalMs / 1000}s`,
        history_samples: `${history.size}/${history.capacity}`,
        ...Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, String(v)])),
      },
    })),
  ];

  return {
    history,
    stop(): void {
      clearInterval(timer);
      for (const off of offs) off();
    },
  };
}
