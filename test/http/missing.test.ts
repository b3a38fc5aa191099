// Nodes that should answer a cluster-wide read and do not are listed in `missing`, and the read
// still ends in bounded time: a real `serf agent` carrying the tags of a balancer (lb), a checked
// node (chk) and a monitor (mon=1) never answers kodama's queries.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAgent } from '../../src/index.ts';
import type { ChecksResponse, MembersResponse, ServicesResponse } from '../../src/http/types.ts';
import { apiValidator } from './schemas.ts';
import { getJson, until } from './helpers.ts';
import { startSerf, stopAll } from '../lib/agents.ts';

test('a serf node tagged as balancer, checked node and monitor is listed in missing; reads stay bounded', { timeout: 60_000 }, async (t) => {
  const { validate } = apiValidator();
  t.after(() => stopAll());
  const a = createAgent({ nodeName: 'api', bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', logLevel: 'WARN', logSink: () => undefined, httpAddr: '127.0.0.1:0' });
  t.after(() => a.stop());
  await a.start();
  const serf = await startSerf('silent', { tags: { lb: 'web', chk: '1', mon: '1', role: 'legacy' }, join: [`127.0.0.1:${a.bindAddress.port}`] });
  await until('the serf node is alive here', 15_000, () => a.members().some((m) => m.name === 'silent' && m.status === 'alive'), 100).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}\n${serf.output()}`);
  });
  const api = a.http!;

  const members = (await getJson(api.url('/v1/members?role=legacy'))).body as MembersResponse;
  validate('MembersResponse', members);
  assert.deepEqual(members.members.map((m) => [m.name, m.checks?.total]), [['silent', 1]]);

  const t0 = Date.now();
  const [services, checks] = await Promise.all([getJson(api.url('/v1/services')), getJson(api.url('/v1/checks'))]);
  const tookMs = Date.now() - t0;
  t.diagnostic(`services + checks with one silent node: ${tookMs} ms`);
  validate('ServicesResponse', services.body);
  validate('ChecksResponse', checks.body);
  assert.deepEqual((services.body as ServicesResponse).missing, ['silent']);
  assert.deepEqual((services.body as ServicesResponse).services, []);
  assert.deepEqual((checks.body as ChecksResponse).missing, ['silent']);
  assert.deepEqual((checks.body as ChecksResponse).nodes, []);
  // The read's own deadline is 1.5 s; the rest is margin for a loaded machine.
  assert.ok(tookMs < 8000, `bounded: ${tookMs} ms`);
});
