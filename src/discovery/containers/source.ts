// Watches the local container engine and keeps the list of services its containers offer
// (labels.ts says how a container becomes a service). Three ways in, so nothing is missed:
//  - a full list at start, and again every `pollMs` (a resync: an event lost while the stream
//    was down, or a state no event announces — Podman 4 sends none when a stop begins, only
//    the list says "stopping");
//  - the `/events` stream: any event about a labelled container lists again at once (a
//    `kill` with an ending signal marks the container stopping: Docker's only sign of a stop);
//  - reconnects: a lost stream comes back with backoff, and lists again when it does.
// The engine missing or restarting is one WARN line (not one per retry), then retries with
// backoff (0.5 s doubling to 10 s); the last known services stay as they are meanwhile (their
// own health checks still run), and one INFO line says when the engine answers again. Bad input
// — malformed JSON, a container with unusable labels — is logged once and dropped.

import { EngineError, listContainers, streamEvents } from './engine.ts';
import type { EventStream } from './engine.ts';
import { readContainer, readEvent } from './labels.ts';
import type { ContainerService } from './labels.ts';

export interface ContainerSourceOptions {
  socket: string;
  /** Full re-list interval. */
  pollMs: number;
  log: (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string) => void;
  /** Called with every labelled container that is not gone, after each list that changed it. */
  onChange: (services: ContainerService[]) => void;
  /** Bound on one list request (default 5 s). */
  requestTimeoutMs?: number;
  /** Retry backoff bounds (defaults 500 ms, 10 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface ContainerSource {
  /** The services of the last successful list. */
  current(): ContainerService[];
  /** Whether the engine answered the last list. */
  readonly reachable: boolean;
  counters(): Record<string, number>;
  stop(): void;
}

/** Events arriving together (create, init, start) make one list. */
const RELIST_COALESCE_MS = 20;

export function startContainerSource(o: ContainerSourceOptions): ContainerSource {
  const minBackoff = o.minBackoffMs ?? 500;
  const maxBackoff = o.maxBackoffMs ?? 10_000;
  const timeoutMs = o.requestTimeoutMs ?? 5_000;
  let stopped = false;
  let services: ContainerService[] = [];
  let lastKey = '';
  let reachable = true;
  let everListed = false;
  let listing = false;
  let again = false;
  let listTimer: NodeJS.Timeout | undefined;
  let listBackoff = minBackoff;
  let stream: EventStream | undefined;
  let streamTimer: NodeJS.Timeout | undefined;
  let streamBackoff = minBackoff;
  let streamDown = false;
  /** The stream's loss was logged (only when the list still works: else the list's line says it all). */
  let streamReported = false;
  /** Ids a `kill` event said are stopping (Docker lists them "running" until they exit). */
  const stopping = new Set<string>();
  /** Problems already logged (container id + error), so a bad container is one line, not one per list. */
  const reported = new Set<string>();
  const counts = { lists: 0, list_failures: 0, events: 0, bad_events: 0, invalid_containers: 0, stream_reconnects: 0 };

  const later = (fn: () => void, ms: number): NodeJS.Timeout => {
    const t = setTimeout(fn, ms);
    t.unref(); // the agent's sockets keep the process alive, not this watcher
    return t;
  };

  /** When the pending list runs (Infinity: none pending). */
  let listDue = Infinity;
  const scheduleList = (ms: number): void => {
    if (stopped) return;
    // A sooner list already pending stands: a storm of events must not keep postponing it.
    if (listDue <= Date.now() + ms) return;
    clearTimeout(listTimer);
    listDue = Date.now() + ms;
    listTimer = later(() => {
      listDue = Infinity;
      void list();
    }, ms);
  };

  const list = async (): Promise<void> => {
    if (stopped) return;
    if (listing) {
      again = true;
      return;
    }
    listing = true;
    clearTimeout(listTimer);
    listDue = Infinity;
    let raw: unknown[] | undefined;
    let failure: Error | undefined;
    try {
      raw = await listContainers(o.socket, timeoutMs);
    } catch (e) {
      failure = e as Error;
    }
    listing = false;
    if (stopped) return;
    counts.lists++;
    if (raw === undefined) {
      counts.list_failures++;
      if (reachable) {
        reachable = false;
        const kept = services.length === 0 ? 'no services from containers yet' : `keeping the last known ${services.length} (${services.map((s) => s.spec.name).join(', ')})`;
        o.log('WARN', `containers: no usable answer from the engine at ${o.socket}: ${failure instanceof EngineError ? failure.message : String(failure)}; ${kept}; retrying with backoff up to ${maxBackoff / 1000} s`);
      }
      scheduleList(listBackoff);
      listBackoff = Math.min(maxBackoff, listBackoff * 2);
      return;
    }
    if (!reachable || !everListed) o.log('INFO', `containers: engine at ${o.socket} ${everListed ? 'answers again' : 'answers'}: ${raw.length} labelled container(s)`);
    reachable = true;
    everListed = true;
    listBackoff = minBackoff;
    if (streamDown && !streamReported) {
      streamReported = true;
      o.log('WARN', `containers: the engine at ${o.socket} answers but its event stream does not; listing every ${o.pollMs} ms meanwhile, reconnecting`);
    }
    const found: ContainerService[] = [];
    const seen = new Set<string>();
    for (const c of raw) {
      const r = readContainer(c, stopping);
      if (r.kind === 'ignored') continue;
      if (r.kind === 'invalid') {
        counts.invalid_containers++;
        const key = `${r.id}\n${r.error}`;
        seen.add(key);
        if (!reported.has(key)) {
          reported.add(key);
          o.log('WARN', `containers: ignoring container ${r.container}: ${r.error}`);
        }
        continue;
      }
      seen.add(r.service.id);
      if (r.service.phase !== 'gone') found.push(r.service);
    }
    // Forget what is no longer listed: a removed container, a fixed label.
    for (const k of reported) if (!seen.has(k)) reported.delete(k);
    for (const id of stopping) if (!seen.has(id)) stopping.delete(id);
    found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    services = found;
    const key = JSON.stringify(found.map((s) => [s.id, s.phase, s.spec]));
    if (key !== lastKey) {
      lastKey = key;
      o.onChange(services);
    }
    if (again) {
      again = false;
      scheduleList(0);
    } else scheduleList(o.pollMs);
  };

  const connect = (): void => {
    if (stopped) return;
    stream = streamEvents(o.socket, {
      onOpen: () => {
        if (streamReported) o.log('INFO', 'containers: event stream back');
        streamDown = false;
        streamReported = false;
        streamBackoff = minBackoff;
        // Whatever happened while it was down.
        scheduleList(0);
      },
      onEvent: (raw) => {
        const e = readEvent(raw);
        if (e === undefined) return;
        counts.events++;
        if (e.stoppingId !== undefined) stopping.add(e.stoppingId);
        scheduleList(RELIST_COALESCE_MS);
      },
      onBadLine: (why) => {
        counts.bad_events++;
        o.log('DEBUG', `containers: ${why}`);
      },
      onEnd: (err) => {
        stream = undefined;
        if (stopped) return;
        counts.stream_reconnects++;
        o.log('DEBUG', `containers: event stream ended: ${err.message}`);
        // A list at once says which it is: the engine gone (the list's one line) or only the
        // stream (a line of its own then).
        if (!streamDown) scheduleList(0);
        streamDown = true;
        streamTimer = later(connect, streamBackoff);
        streamBackoff = Math.min(maxBackoff, streamBackoff * 2);
      },
    });
  };

  connect();
  void list();

  return {
    current: () => services,
    get reachable() {
      return reachable;
    },
    counters: () => ({ ...counts, containers: services.length, engine_reachable: reachable ? 1 : 0 }),
    stop() {
      stopped = true;
      clearTimeout(listTimer);
      clearTimeout(streamTimer);
      stream?.close();
    },
  };
}
