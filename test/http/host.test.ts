// DNS-rebinding guard: an open API (loopback, no token) answers /v1 only for loopback host names;
// a token-protected API does not care which name it is reached by.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent } from '../../src/index.ts';
import { startHttpApi } from '../../src/http/server.ts';
import { rawRequest } from './helpers.ts';
import { apiValidator } from './schemas.ts';

const get = (port: number, path: string, host: string, extra = ''): Promise<{ status: number; text: string }> =>
  rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`);

function body(text: string): unknown {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as unknown;
}

test('an open API refuses non-loopback Host names with 403 ERR_HTTP_HOST; loopback names and token-protected APIs pass', async (t) => {
  const { validate } = apiValidator();
  const a = createAgent({ nodeName: 'host-guard', bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', logSink: () => {} });
  t.after(() => a.stop());
  await a.start();
  const open = await startHttpApi(a, { addr: '127.0.0.1:0' });
  t.after(() => open.stop());
  const p = open.address.port;

  for (const host of [`127.0.0.1:${p}`, `localhost:${p}`, `127.1.2.3:${p}`, `[::1]:${p}`, 'localhost']) {
    assert.equal((await get(p, '/v1/agent', host)).status, 200, host);
  }
  for (const host of [`attacker.example:${p}`, 'attacker.example', `10.0.0.5:${p}`, `127.0.0.1.attacker.example:${p}`]) {
    const r = await get(p, '/v1/members', host);
    assert.equal(r.status, 403, host);
    const b = body(r.text);
    validate('ErrorResponse', b);
    assert.equal((b as { code: string }).code, 'ERR_HTTP_HOST', host);
  }
  assert.equal(open.counters()['host_refusals'], 4);
  // The dashboard's files hold no data: served whatever the name.
  assert.equal((await get(p, '/ui/', 'attacker.example')).status, 200);

  const locked = await startHttpApi(a, { addr: '127.0.0.1:0', token: 'tok' });
  t.after(() => locked.stop());
  const q = locked.address.port;
  assert.equal((await get(q, '/v1/agent', 'kodama.internal', 'Authorization: Bearer tok\r\n')).status, 200);
  assert.equal((await get(q, '/v1/agent', 'kodama.internal')).status, 401);
});
