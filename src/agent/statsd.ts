// serf's `statsd_addr` / `statsite_addr` (and kodama's -statsd / -statsite): the figures of
// `GET /metrics` (telemetry.ts), every 10 s, as statsd lines — `<name>:<value>|g` for gauges,
// `|c` with the increase since the last flush for counters, and for the probe round-trip
// histogram its count (`|c`) and the interval's mean in ms (`|ms`). statsd gets them over UDP
// (datagrams of at most 1432 bytes, as go-metrics sends); statsite over one TCP connection,
// redialled when it breaks (lines meanwhile are dropped and counted, never queued without bound).
//
// Names: `kodama.<node>.<family without kodama_>[.<label values>]`, e.g.
// `kodama.web-1.members.alive:3|g`, `kodama.lb-1.balancer_requests_total.web.web-2:120|c`.

import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { parseHostPort } from './address.ts';
import type { MetricFamily } from './telemetry.ts';

export const STATS_FLUSH_MS = 10_000;
const MAX_DATAGRAM = 1432;
const STATSITE_BUFFER_MAX = 256 * 1024;

function clean(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]+/g, '_');
}

/** Counter values last sent, by line name (a counter's increase is sent, not its total). */
export type CounterMemory = Map<string, number>;

/** The families as statsd lines; `last` is updated with the counters sent. */
export function statsdLines(families: readonly MetricFamily[], prefix: string, last: CounterMemory): string[] {
  const out: string[] = [];
  const num = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(6));
  for (const f of families) {
    const base = `${prefix}.${f.name.replace(/^kodama_/, '')}`;
    if (f.histogram !== undefined) {
      const h = f.histogram;
      const countKey = `${base}.count`;
      const sumKey = `${base}.sum`;
      const dCount = h.count - (last.get(countKey) ?? 0);
      const dSum = h.sum - (last.get(sumKey) ?? 0);
      last.set(countKey, h.count);
      last.set(sumKey, h.sum);
      out.push(`${countKey}:${dCount}|c`);
      if (dCount > 0) out.push(`${base}:${num((dSum / dCount) * 1000)}|ms`);
      continue;
    }
    for (const s of f.samples) {
      const name = [base, ...Object.values(s.labels ?? {}).map(clean)].join('.');
      if (f.type === 'counter') {
        const prev = last.get(name) ?? 0;
        // A counter that went down (a backend re-added): it started over.
        const delta = s.value >= prev ? s.value - prev : s.value;
        last.set(name, s.value);
        out.push(`${name}:${num(delta)}|c`);
      } else {
        out.push(`${name}:${num(s.value)}|g`);
      }
    }
  }
  return out;
}

/** Lines packed into datagrams of at most MAX_DATAGRAM bytes (a longer line goes alone). */
export function packDatagrams(lines: readonly string[]): string[] {
  const out: string[] = [];
  let cur = '';
  for (const l of lines) {
    if (cur !== '' && cur.length + 1 + l.length > MAX_DATAGRAM) {
      out.push(cur);
      cur = '';
    }
    cur = cur === '' ? l : `${cur}\n${l}`;
  }
  if (cur !== '') out.push(cur);
  return out;
}

export interface StatsSinksOptions {
  statsdAddr?: string;
  statsiteAddr?: string;
  nodeName: string;
  collect: () => Promise<MetricFamily[]>;
  log: (level: 'DEBUG' | 'INFO' | 'WARN', msg: string) => void;
  intervalMs?: number;
}

export interface StatsSinks {
  /** Flush now (tests; the timer does it every intervalMs). */
  flush(): Promise<void>;
  counters(): Record<string, number>;
  stop(): void;
}

export function startStatsSinks(o: StatsSinksOptions): StatsSinks {
  const prefix = `kodama.${clean(o.nodeName)}`;
  const last: CounterMemory = new Map();
  const counts = { flushes: 0, lines_sent: 0, send_errors: 0, lines_dropped: 0 };
  let udp: UdpSocket | undefined;
  let statsd: { host: string; port: number } | undefined;
  if (o.statsdAddr !== undefined && o.statsdAddr !== '') {
    statsd = parseHostPort(o.statsdAddr, 8125);
    udp = createSocket(statsd.host.includes(':') ? 'udp6' : 'udp4');
    udp.on('error', (e) => {
      counts.send_errors++;
      o.log('DEBUG', `telemetry: statsd ${o.statsdAddr}: ${e.message}`);
    });
    udp.unref();
  }

  // statsite: one TCP connection, redialled at the next flush after it breaks.
  let tcp: Socket | undefined;
  let tcpUp = false;
  let warned = false;
  const site = o.statsiteAddr !== undefined && o.statsiteAddr !== '' ? parseHostPort(o.statsiteAddr, 8125) : undefined;
  const dial = (): void => {
    if (site === undefined || tcp !== undefined) return;
    const s = connect({ host: site.host, port: site.port });
    tcp = s;
    s.unref();
    s.setNoDelay(true);
    s.on('connect', () => {
      tcpUp = true;
      warned = false;
    });
    s.on('error', (e) => {
      counts.send_errors++;
      if (!warned) o.log('WARN', `telemetry: statsite ${o.statsiteAddr}: ${e.message}; retrying every ${(o.intervalMs ?? STATS_FLUSH_MS) / 1000} s`);
      warned = true;
    });
    s.on('close', () => {
      tcp = undefined;
      tcpUp = false;
    });
  };
  dial();

  const flush = async (): Promise<void> => {
    let lines: string[];
    try {
      lines = statsdLines(await o.collect(), prefix, last);
    } catch (e) {
      o.log('DEBUG', `telemetry: could not collect: ${(e as Error).message}`);
      return;
    }
    counts.flushes++;
    if (udp !== undefined && statsd !== undefined) {
      for (const d of packDatagrams(lines)) {
        udp.send(d, statsd.port, statsd.host, (err) => {
          if (err) counts.send_errors++;
        });
      }
      counts.lines_sent += lines.length;
    }
    if (site !== undefined) {
      if (tcp !== undefined && tcpUp && tcp.writableLength < STATSITE_BUFFER_MAX) {
        tcp.write(`${lines.join('\n')}\n`);
        counts.lines_sent += lines.length;
      } else {
        counts.lines_dropped += lines.length;
        dial();
      }
    }
  };
  const timer = setInterval(() => void flush(), o.intervalMs ?? STATS_FLUSH_MS);
  timer.unref();
  return {
    flush,
    counters: () => ({ ...counts }),
    stop: () => {
      clearInterval(timer);
      udp?.close();
      udp = undefined;
      tcp?.destroy();
    },
  };
}
