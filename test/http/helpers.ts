// Shared by the HTTP API tests: bounded waits, a JSON GET, an SSE reader and a raw request.

import assert from 'node:assert/strict';
import { connect } from 'node:net';

export async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | false | Promise<T | undefined | false>, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${last !== undefined ? ` (last error: ${(last as Error).message})` : ''}`);
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
  const r = await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the test asserting on it says so
  }
  return { status: r.status, body, headers: r.headers };
}

export interface SseMessage {
  event: string;
  data: unknown;
}

/** Follows a text/event-stream; next() waits (bounded) for the first message matching pred. */
export async function openStream(url: string, headers: Record<string, string> = {}): Promise<{
  status: number;
  next(what: string, pred: (m: SseMessage) => boolean, timeoutMs: number): Promise<SseMessage>;
  seen: SseMessage[];
  close(): void;
}> {
  const ac = new AbortController();
  const r = await fetch(url, { headers, signal: ac.signal });
  const seen: SseMessage[] = [];
  let waiters: (() => void)[] = [];
  let buf = '';
  if (r.ok && r.body !== null) {
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let at: number;
          while ((at = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, at);
            buf = buf.slice(at + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length === 0) continue;
            seen.push({ event, data: JSON.parse(data.join('\n')) as unknown });
            const w = waiters;
            waiters = [];
            for (const fn of w) fn();
          }
        }
      } catch {
        // aborted by close()
      }
    })();
  }
  return {
    status: r.status,
    seen,
    async next(what, pred, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (let i = 0; i < 100_000; i++) {
        const m = seen.find(pred);
        if (m !== undefined) return m;
        const left = deadline - Date.now();
        if (left <= 0) break;
        await new Promise<void>((res) => {
          const t = setTimeout(res, Math.min(left, 200));
          waiters.push(() => {
            clearTimeout(t);
            res();
          });
        });
      }
      assert.fail(`no stream message "${what}" within ${timeoutMs} ms; saw: ${seen.map((m) => m.event).join(', ')}`);
    },
    close: () => ac.abort(),
  };
}

/** Send `raw` bytes as they are (no URL normalisation) and return the status code and body. */
export function rawRequest(port: number, raw: string, timeoutMs = 5000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer to raw request within ${timeoutMs} ms`));
    }, timeoutMs);
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      text += d;
      // One response is enough: headers plus Content-Length bytes.
      const end = text.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(text);
      if (end >= 0 && len !== null && text.length >= end + 4 + Number(len[1])) s.end();
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    });
    s.write(raw, 'latin1');
  });
}
