// The timeline's local sources: this node's service health changes and user events, as another
// dashboard reader sees them through /v1/events (route events are told as routes, not user events).

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createAgent } from '../../src/index.ts';
import type { EventsResponse } from '../../src/http/types.ts';
import { apiValidator } from './schemas.ts';
import { getJson, until } from './helpers.ts';

test('timeline: service health changes, user events and routes of this node', { timeout: 30_000 }, async (t) => {
  const { validate } = apiValidator();
  let healthy = false;
  const page = createServer((req, res) => {
    req.resume();
    res.writeHead(healthy ? 200 : 503);
    res.end();
  });
  await new Promise<void>((r) => page.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => page.close(() => r())));
  const a = createAgent({
    nodeName: 'svc', bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', logLevel: 'WARN', logSink: () => undefined, httpAddr: '127.0.0.1:0',
    services: [{ name: 'web', port: (page.address() as AddressInfo).port, protocol: 'http', weight: 100, tags: [],
      checks: [{ kind: 'http', path: '/health', expectStatus: 200, intervalMs: 200, timeoutMs: 500, rise: 1, fall: 1 }] }],
  });
  t.after(() => a.stop());
  await a.start();
  const api = a.http!;
  const events = async (): Promise<EventsResponse> => {
    const r = await getJson(api.url('/v1/events'));
    validate('EventsResponse', r.body);
    return r.body as EventsResponse;
  };
  healthy = true;
  await until('service healthy in the timeline', 10_000, async () => (await events()).events.some((e) => e.kind === 'service' && e.node === 'svc' && /service web is healthy/.test(e.text)));
  a.userEvent('hello', 'abc', false);
  await a.publishRoute({ service: 'web', tag: 'color', weights: { green: 100 }, by: 'manual' });
  const e = await until('user event and route', 5000, async () => {
    const x = await events();
    return x.events.some((y) => y.kind === 'user') && x.events.some((y) => y.kind === 'route') ? x : undefined;
  });
  assert.deepEqual(e.events.filter((x) => x.kind === 'user').map((x) => x.text), ['user event hello (3 bytes)'], 'the route event is not also a user event');
  assert.match(e.events.find((x) => x.kind === 'route')!.text, /^route web: color green 100% \(by manual\)$/);
  healthy = false;
  await until('service unhealthy in the timeline', 10_000, async () => (await events()).events.some((x) => x.kind === 'service' && /service web is unhealthy/.test(x.text)));
});
