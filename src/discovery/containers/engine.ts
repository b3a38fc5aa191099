// A minimal client of the container engine's Docker-compatible API (Docker, or Podman's
// `podman system service`) over its unix socket, with node:http's `socketPath`: list the
// containers, and follow the `/events` stream. No retries here: the watcher (source.ts) owns
// backoff and what to keep meanwhile.

import { request } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { SERVICE_LABEL } from './labels.ts';

/** The API version asked for: old enough for every Podman 4 / Docker 20+ engine. */
const API = '/v1.41';

/** An engine's answer is a list of small objects; one this big is not an engine. */
const MAX_LIST_BYTES = 16 * 1024 * 1024;
/** One event is a line of a few hundred bytes; a longer one is dropped (and the stream reset). */
const MAX_EVENT_LINE_BYTES = 256 * 1024;

export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineError';
  }
}

/**
 * Every container carrying the `kodama.service` label, whatever its state (a stopping one
 * matters: it is drained). Resolves with the parsed JSON list; rejects with an EngineError on a
 * missing socket, a refused connection, a non-2xx answer, a timeout or malformed JSON.
 */
export function listContainers(socketPath: string, timeoutMs: number): Promise<unknown[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [SERVICE_LABEL] }));
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: `${API}/containers/json?all=true&filters=${filters}`, method: 'GET', timeout: timeoutMs, headers: { host: 'engine' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_LIST_BYTES) {
          res.destroy();
          reject(new EngineError(`container list larger than ${MAX_LIST_BYTES} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', (e) => reject(new EngineError(e.message)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 300) {
          reject(new EngineError(`GET /containers/json answered ${res.statusCode}: ${text.slice(0, 200).trim()}`));
          return;
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch (e) {
          reject(new EngineError(`GET /containers/json: malformed JSON (${(e as Error).message})`));
          return;
        }
        if (!Array.isArray(parsed)) {
          reject(new EngineError('GET /containers/json: expected a JSON list'));
          return;
        }
        resolve(parsed);
      });
    });
    req.on('timeout', () => req.destroy(new EngineError(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof EngineError ? e : new EngineError(describe(e))));
    req.end();
  });
}

export interface EventStream {
  close(): void;
}

export interface EventHandlers {
  /** The stream is up (the engine answered 200). */
  onOpen(): void;
  /** One parsed event. */
  onEvent(e: unknown): void;
  /** A line that is not JSON (logged by the caller, the stream goes on). */
  onBadLine(why: string): void;
  /** The stream ended or failed (not called after close()). */
  onEnd(err: EngineError): void;
}

/** Follow `/events` (containers only): one JSON object per line, as both engines send. */
export function streamEvents(socketPath: string, h: EventHandlers): EventStream {
  let closed = false;
  let ended = false;
  const end = (err: EngineError): void => {
    if (closed || ended) return;
    ended = true;
    h.onEnd(err);
  };
  const filters = encodeURIComponent(JSON.stringify({ type: ['container'] }));
  const req: ClientRequest = request({ socketPath, path: `${API}/events?filters=${filters}`, method: 'GET', headers: { host: 'engine' } }, (res: IncomingMessage) => {
    if ((res.statusCode ?? 500) >= 300) {
      res.resume();
      end(new EngineError(`GET /events answered ${res.statusCode}`));
      return;
    }
    h.onOpen();
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        let e: unknown;
        try {
          e = JSON.parse(line);
        } catch {
          h.onBadLine(`malformed event line: ${line.slice(0, 120)}`);
          continue;
        }
        if (!closed) h.onEvent(e);
      }
      if (buf.length > MAX_EVENT_LINE_BYTES) {
        h.onBadLine(`event line longer than ${MAX_EVENT_LINE_BYTES} bytes dropped`);
        buf = '';
      }
    });
    res.on('error', (e) => end(new EngineError(describe(e))));
    res.on('close', () => end(new EngineError('the engine closed the event stream')));
  });
  req.on('error', (e) => end(new EngineError(describe(e))));
  req.end();
  return {
    close() {
      closed = true;
      req.destroy();
    },
  };
}

/** ENOENT / ECONNREFUSED say more to an operator as words. */
function describe(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'the socket does not exist (is the engine running? for Podman: podman system service)';
  if (code === 'ECONNREFUSED') return 'connection refused (the socket exists but nothing listens on it)';
  if (code === 'EACCES') return 'permission denied on the socket';
  return e.message;
}
