// The reads GET /v1/snapshot makes for a first look (ClusterReads.deploysWithin,
// performanceWithin): answers that come within the short wait are in, later ones are not, and the
// read goes on to its full deadline, whose answer the endpoint then gets from the cache without a
// second query. A fake host answers the queries on a schedule, so what arrives when is fixed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterReads } from '../../src/http/cluster-reads.ts';
import type { HttpHost } from '../../src/http/host.ts';
import { encodeDeploySummary } from '../../src/http/deploys-query.ts';
import type { DeploySummary } from '../../src/http/types.ts';
import type { QueryOptions, QueryResult } from '../../src/agent/host.ts';

function summary(id: string, coordinator: string, updatedAt: number): DeploySummary {
  return { id, coordinator, service: 'web', from: 'blue', to: 'green', phase: 'shift', percent: 10, steps: [10, 100], startedAt: updatedAt - 1000, updatedAt, figures: {} };
}

/**
 * A host whose cluster is api + fast + slow; `fast` answers the deploys query after 10 ms, `slow`
 * after 400 ms; nobody answers kodama-metrics (nobody samples: serf agents).
 */
function fakeHost(): { host: HttpHost; queries: string[] } {
  const queries: string[] = [];
  const member = (name: string): unknown => ({ name, addr: { ip: '127.0.0.1', port: 1 }, tags: {}, status: 'alive' });
  const host = {
    nodeName: 'api',
    deploys: undefined,
    routes: { get: () => undefined, all: () => [] },
    members: () => ['api', 'fast', 'slow'].map(member),
    query(opts: QueryOptions): Promise<QueryResult> {
      queries.push(opts.name);
      const responses = new Map<string, Uint8Array>();
      const deadline = new Promise<QueryResult>((resolve) => setTimeout(() => resolve({ acks: [], responses }), opts.timeoutMs ?? 1000));
      if (opts.name !== 'kodama-deploys') return deadline;
      const answer = (from: string, after: number, s: DeploySummary): void => {
        setTimeout(() => {
          responses.set(from, encodeDeploySummary(s));
          opts.onResponse?.(from, responses.get(from)!);
        }, after);
      };
      answer('fast', 10, summary('d-fast', 'fast', 2000));
      answer('slow', 400, summary('d-slow', 'slow', 3000));
      return deadline;
    },
  };
  return { host: host as unknown as HttpHost, queries };
}

test('deploysWithin gives the coordinators that answered in time; the full read goes on and is cached', { timeout: 10_000 }, async () => {
  const { host, queries } = fakeHost();
  const reads = new ClusterReads(host, { timeoutMs: 700, cacheMs: 5000 });
  const t0 = Date.now();
  const quick = await reads.deploysWithin(150);
  const quickMs = Date.now() - t0;
  assert.deepEqual(quick.elsewhere.map((d) => d.id), ['d-fast'], 'the late coordinator is not waited for');
  assert.ok(quickMs < 600, `answered after the short wait, not the deadline: ${quickMs} ms`);
  assert.deepEqual([quick.current, quick.history, quick.routes], [null, [], []]);

  const full = await reads.deploys();
  assert.deepEqual(full.elsewhere.map((d) => d.id), ['d-slow', 'd-fast'], 'the full read has both, newest first');
  assert.ok(Date.now() - t0 >= 650, 'the full read waited its deadline');
  assert.deepEqual(queries, ['kodama-deploys'], 'one query: the full read joined the one under way');
  assert.deepEqual([reads.counters()['reads_queried'], reads.counters()['reads_cached']], [1, 1]);

  const again = await reads.deploysWithin(150);
  assert.deepEqual(again.elsewhere.map((d) => d.id), ['d-slow', 'd-fast'], 'a cached full answer is given whole');
  assert.equal(queries.length, 1);
  assert.equal(reads.counters()['reads_queried'], 1);
  assert.equal(reads.counters()['bad_answers'], 0);
});

test('performanceWithin lists members that have not answered after the wait as silent, not after the deadline', { timeout: 10_000 }, async () => {
  const { host, queries } = fakeHost();
  const reads = new ClusterReads(host, { timeoutMs: 700, cacheMs: 5000 });
  const t0 = Date.now();
  const quick = await reads.performanceWithin(900, undefined, 150);
  const quickMs = Date.now() - t0;
  assert.deepEqual(quick.silent, ['api', 'fast', 'slow']);
  assert.deepEqual(quick.roles, []);
  assert.ok(quickMs < 600, `after the short wait, not the deadline: ${quickMs} ms`);
  const full = await reads.performance(900, undefined);
  assert.deepEqual(full.silent, ['api', 'fast', 'slow']);
  assert.ok(Date.now() - t0 >= 650, 'the full read waited its deadline');
  assert.ok(queries.every((q) => q === 'kodama-metrics'));
  const c = reads.counters();
  assert.deepEqual([c['reads_queried'], c['reads_cached']], [1, 1], 'one read: the endpoint joined the one under way');
});
