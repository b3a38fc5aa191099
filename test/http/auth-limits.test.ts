// Who may call the API and how much it takes: the loopback rule at config time (options, flags,
// env), the token on a live agent (header, ?token=, wrong, missing), the stream limit, and a
// client that never reads being dropped (and counted) while a reading one keeps its stream.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { createAgent, AgentError, startHttpApi } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { agentOptions, readAgentConfig } from '../../src/cli/agent.ts';
import { apiValidator } from './schemas.ts';
import { getJson, openStream, until } from './helpers.ts';

const quiet = { logLevel: 'WARN', logSink: () => undefined } as const;

test('a non-loopback API without a token is refused at config time, saying how', () => {
  for (const addr of ['0.0.0.0:8500', '10.1.2.3:0', '[::]:8500', 'example.com:80', '192.168.0.1:1']) {
    assert.throws(
      () => createAgent({ nodeName: 'n', httpAddr: addr }),
      (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG' && /-http-token/.test(e.message) && /KODAMA_HTTP_TOKEN/.test(e.message),
      addr,
    );
    assert.doesNotThrow(() => createAgent({ nodeName: 'n', httpAddr: addr, httpToken: 't0ken' }), addr);
  }
  for (const addr of ['127.0.0.1:0', '127.9.8.7:8500', 'localhost:8500', '[::1]:8500']) {
    assert.doesNotThrow(() => createAgent({ nodeName: 'n', httpAddr: addr }), addr);
  }
  for (const bad of ['8500', 'host', ':8500', '127.0.0.1:99999', '127.0.0.1:x']) {
    assert.throws(() => createAgent({ nodeName: 'n', httpAddr: bad }), (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG' && /host:port/.test(e.message), bad);
  }
});

test('http_addr / http_token from flags and KODAMA_HTTP_* env reach the agent options', () => {
  assert.throws(() => readAgentConfig(['-node', 'n', '-http-addr', '0.0.0.0:8500'], {}), (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG' && /-http-token/.test(e.message));
  assert.throws(() => readAgentConfig(['-node', 'n'], { KODAMA_HTTP_ADDR: '0.0.0.0:8500' }), (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG');
  const fromEnv = readAgentConfig(['-node', 'n'], { KODAMA_HTTP_ADDR: '0.0.0.0:8500', KODAMA_HTTP_TOKEN: 'env-secret' });
  const o = agentOptions(fromEnv.config, () => undefined);
  assert.equal(o.httpAddr, '0.0.0.0:8500');
  assert.equal(o.httpToken, 'env-secret');
  const flags = agentOptions(readAgentConfig(['-node', 'n', '-http-addr', '127.0.0.1:8600', '-http-token', 'flag-secret'], { KODAMA_HTTP_TOKEN: 'env-secret' }).config, () => undefined);
  assert.equal(flags.httpAddr, '127.0.0.1:8600');
  assert.equal(flags.httpToken, 'flag-secret', 'flags override env');
  const off = agentOptions(readAgentConfig(['-node', 'n'], {}).config, () => undefined);
  assert.equal(off.httpAddr, undefined, 'off by default');
});

test('with a token: 401 without it or with a wrong one, 200 with the header or ?token=; /ui/ stays public', { timeout: 30_000 }, async (t) => {
  const { validate } = apiValidator();
  const a = createAgent({ nodeName: 'tok', bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', ...quiet, httpAddr: '127.0.0.1:0', httpToken: 's3cret-token' });
  t.after(() => a.stop());
  await a.start();
  const api = a.http!;
  for (const [what, path, headers] of [
    ['no token', '/v1/members', {}],
    ['wrong bearer', '/v1/members', { authorization: 'Bearer s3cret-tokeN' }],
    ['wrong scheme', '/v1/members', { authorization: 'Basic s3cret-token' }],
    ['prefix of the token', '/v1/agent?token=s3cret', {}],
    ['longer than the token', '/v1/agent?token=s3cret-token-and-more', {}],
    ['stream without token', '/v1/stream', {}],
  ] as const) {
    const r = await getJson(api.url(path), headers);
    assert.equal(r.status, 401, what);
    validate('ErrorResponse', r.body);
    assert.equal((r.body as { code: string }).code, 'ERR_HTTP_AUTH', what);
  }
  const byHeader = await getJson(api.url('/v1/members'), { authorization: 'Bearer s3cret-token' });
  assert.equal(byHeader.status, 200);
  validate('MembersResponse', byHeader.body);
  const byQuery = await getJson(api.url('/v1/agent?token=s3cret-token'));
  assert.equal(byQuery.status, 200);
  validate('AgentInfo', byQuery.body);
  const s = await openStream(api.url('/v1/stream?token=s3cret-token'));
  try {
    assert.equal(s.status, 200);
    validate('StreamHello', (await s.next('hello', (m) => m.event === 'hello', 5000)).data);
  } finally {
    s.close();
  }
  const ui = await fetch(api.url('/ui/'));
  assert.equal(ui.status, 200, 'the dashboard files need no token');
  await ui.text();
  assert.equal(api.counters()['auth_failures'], 6);
});

test('stream limits: the N+1th stream is refused; a client that never reads is dropped and counted, readers keep theirs', { timeout: 60_000 }, async (t) => {
  const { validate } = apiValidator();
  const a: Agent = createAgent({ nodeName: 'limits', bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', ...quiet });
  t.after(() => a.stop());
  await a.start();
  const api = await startHttpApi(a, { addr: '127.0.0.1:0', maxStreams: 2, maxStreamBufferBytes: 16 * 1024, pingIntervalMs: 300 });
  t.after(() => api.stop());

  const reader = await openStream(api.url('/v1/stream'));
  t.after(() => reader.close());
  await reader.next('hello', (m) => m.event === 'hello', 5000);
  validate('StreamPing', (await reader.next('ping', (m) => m.event === 'ping', 5000)).data);

  // A client that sends the request and never reads a byte.
  const stuck = connect(api.address.port, '127.0.0.1');
  t.after(() => stuck.destroy());
  await new Promise<void>((r) => stuck.once('connect', () => r()));
  stuck.pause();
  stuck.write('GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await until('2 streams open', 5000, () => api.counters()['streams_open'] === 2);

  const third = await getJson(api.url('/v1/stream'));
  assert.equal(third.status, 503);
  validate('ErrorResponse', third.body);
  assert.equal((third.body as { code: string }).code, 'ERR_HTTP_TOO_MANY_STREAMS');
  assert.equal(third.headers.get('retry-after'), '5');

  // Fill the stuck client's socket buffers (the kernel's first, then ours) with timeline lines.
  const name = `flood-${'x'.repeat(300)}`;
  let sent = 0;
  const deadline = Date.now() + 30_000;
  while (api.counters()['streams_dropped_slow'] === 0 && Date.now() < deadline && sent < 40_000) {
    for (let i = 0; i < 50; i++) a.userEvent(name, '', false);
    sent += 50;
    await new Promise((r) => setImmediate(r));
  }
  t.diagnostic(`stuck client dropped after ${sent} user events (~${Math.round((sent * 420) / 1024)} KiB of stream)`);
  assert.equal(api.counters()['streams_dropped_slow'], 1, 'the client that never reads was dropped');
  await until('stream slot freed', 5000, () => api.counters()['streams_open'] === 1);
  // The reader kept its stream and saw the flood's last lines.
  await reader.next('a flood line', (m) => m.event === 'timeline' && (m.data as { text: string }).text.includes('flood-'), 10_000);
  const fourth = await openStream(api.url('/v1/stream'));
  try {
    assert.equal(fourth.status, 200, 'a freed slot is usable again');
  } finally {
    fourth.close();
  }
  const ok = await getJson(api.url('/v1/events?since=0'));
  assert.equal(ok.status, 200);
  validate('EventsResponse', ok.body);
  assert.equal((ok.body as { events: unknown[] }).events.length, 500, 'the timeline keeps its last 500');
});
