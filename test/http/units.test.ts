// The API's pure parts: the timeline ring, the kodama-deploys summary (fits 1024 bytes, strict
// decoding), the dashboard file loader (only files inside its directory), the loopback rule.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Timeline } from '../../src/http/timeline.ts';
import { decodeDeploySummary, encodeDeploySummary, summarizeDeploy } from '../../src/http/deploys-query.ts';
import { loadUiFile } from '../../src/http/static.ts';
import { isLoopbackHost, parseHttpAddr, presentedToken, requestAllowed } from '../../src/http/auth.ts';
import type { DeployState } from '../../src/deploy/types.ts';
import { API_PATHS } from '../../src/http/server.ts';
import { API_DOC, apiValidator, readSchemas } from './schemas.ts';

test('timeline: seq increases by one, since pages, the ring keeps the last N', () => {
  let now = 1000;
  const tl = new Timeline(5, () => now++);
  assert.equal(tl.next, 1);
  assert.deepEqual(tl.since(0), []);
  const seen: number[] = [];
  tl.onEvent((e) => seen.push(e.seq));
  for (let i = 0; i < 8; i++) tl.push('user', null, `e${i}`);
  assert.equal(tl.next, 9);
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(tl.since(0).map((e) => e.seq), [4, 5, 6, 7, 8], 'the last 5');
  assert.deepEqual(tl.since(7).map((e) => e.text), ['e6', 'e7']);
  assert.deepEqual(tl.since(9), []);
  assert.deepEqual(tl.since(1000), []);
  assert.deepEqual(tl.since(2).map((e) => e.seq), [4, 5, 6, 7, 8], 'fell off the ring: what is left');
});

function deployState(over: Partial<DeployState> = {}): DeployState {
  return {
    id: 'd-coord-abc',
    spec: { service: 'web', tag: 'color', from: 'blue', to: 'green', expected: 2, checkBakeMs: 10_000, checkTimeoutMs: 300_000, steps: [10, 50, 100], stepBakeMs: 30_000, drainTimeoutMs: 60_000, bakeMs: 30_000, maxErrorRate: 0.01, minRequests: 20, applyTimeoutMs: 30_000 },
    coordinator: 'coord',
    phase: 'shift',
    step: 1,
    startedAt: 1_000,
    phaseSince: 2_000,
    updatedAt: 3_000,
    routeLTime: 7,
    figures: { 'green healthy': '2/2', 'balancers applied': '1/2' },
    events: [{ at: 1_000, phase: 'prepare', msg: 'start' }],
    ...over,
  };
}

test('kodama-deploys summary: the current percent, fits the limit, strict decoding', () => {
  const { validate } = apiValidator();
  const s = summarizeDeploy(deployState());
  validate('DeploySummary', s);
  assert.equal(s.percent, 50);
  assert.equal(summarizeDeploy(deployState({ step: -1, phase: 'check' })).percent, 0);
  assert.deepEqual(decodeDeploySummary(encodeDeploySummary(s)), s);

  // A huge reason and many long figures still fit, and decode to a valid summary.
  const fat = deployState({
    reason: 'r'.repeat(5000),
    figures: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`figure-${i}-${'k'.repeat(50)}`, 'v'.repeat(200)])),
  });
  for (const limit of [1024, 600, 400]) {
    const bytes = encodeDeploySummary(summarizeDeploy(fat), limit);
    assert.ok(bytes.byteLength <= limit, `${bytes.byteLength} ≤ ${limit}`);
    const back = decodeDeploySummary(bytes);
    assert.ok(back !== undefined);
    validate('DeploySummary', back);
    assert.equal(back.id, 'd-coord-abc');
  }

  const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
  assert.equal(decodeDeploySummary(new Uint8Array([0xff, 0xfe])), undefined);
  assert.equal(decodeDeploySummary(enc([s])), undefined);
  assert.equal(decodeDeploySummary(enc({ ...s, phase: 'dancing' })), undefined);
  assert.equal(decodeDeploySummary(enc({ ...s, percent: '50' })), undefined);
  assert.equal(decodeDeploySummary(enc({ ...s, figures: { a: 1 } })), undefined);
  assert.equal(decodeDeploySummary(enc({ ...s, steps: ['x'] })), undefined);
  const { id: _id, ...noId } = s;
  assert.equal(decodeDeploySummary(enc(noId)), undefined);
});

test('dashboard files: only regular files inside the directory, with their content type', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'kodama-ui-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const ui = join(root, 'ui');
  await mkdir(join(ui, 'lib'), { recursive: true });
  await writeFile(join(ui, 'index.html'), '<html>');
  await writeFile(join(ui, 'app.js'), 'export {}');
  await writeFile(join(ui, 'lib', 'x.css'), 'body{}');
  await writeFile(join(ui, '.secret.js'), 'no');
  await writeFile(join(root, 'outside.js'), 'no');
  await symlink(join(root, 'outside.js'), join(ui, 'link.js'));
  await symlink(root, join(ui, 'up'));
  const { realpathSync } = await import('node:fs');
  const dir = realpathSync(ui);

  assert.equal((await loadUiFile('', dir))?.type, 'text/html; charset=utf-8');
  assert.equal((await loadUiFile('index.html', dir))?.body.toString(), '<html>');
  assert.equal((await loadUiFile('app.js', dir))?.type, 'text/javascript; charset=utf-8');
  assert.equal((await loadUiFile('lib/x.css', dir))?.type, 'text/css; charset=utf-8');
  assert.equal((await loadUiFile('lib%2Fx.css', dir))?.body.toString(), 'body{}', 'an encoded slash inside the directory is fine');
  for (const bad of ['../outside.js', '%2e%2e/outside.js', '..%2Foutside.js', 'lib/../../outside.js', '.secret.js', 'link.js', 'up/outside.js',
    'lib', 'lib/', 'nope.js', '%zz', 'app.js%00', 'a\\..\\outside.js', '/etc/passwd', '//etc/passwd', 'index.html/']) {
    assert.equal(await loadUiFile(bad, dir), undefined, bad);
  }
});

test('auth helpers: loopback hosts, host:port, token sources', () => {
  for (const h of ['127.0.0.1', '127.200.1.1', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '127.0.0.1.nip.io', '']) assert.ok(!isLoopbackHost(h), h);
  assert.deepEqual(parseHttpAddr('[::1]:8500'), { host: '::1', port: 8500 });
  assert.deepEqual(parseHttpAddr('localhost:0'), { host: 'localhost', port: 0 });
  assert.equal(presentedToken('Bearer abc', new URLSearchParams('token=zzz')), 'abc', 'the header first');
  assert.equal(presentedToken(undefined, new URLSearchParams('token=zzz')), 'zzz');
  assert.equal(presentedToken('Basic abc', new URLSearchParams()), undefined);
  assert.ok(requestAllowed(undefined, undefined));
  assert.ok(!requestAllowed('abc', undefined));
  assert.ok(!requestAllowed('abc', 'abd'));
  assert.ok(requestAllowed('abc', 'abc'));
});

test('docs/api.md documents every endpoint served, each with its response schema', () => {
  const doc = readFileSync(API_DOC, 'utf8');
  const documented = [...doc.matchAll(/^## GET (\/v1\/\w+)$/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), [...API_PATHS].sort());
  const schemas = readSchemas(doc);
  const expected: Record<string, string> = {
    '/v1/agent': 'AgentInfo', '/v1/members': 'MembersResponse', '/v1/services': 'ServicesResponse', '/v1/checks': 'ChecksResponse',
    '/v1/events': 'EventsResponse', '/v1/deploys': 'DeploysResponse', '/v1/history': 'HistoryResponse', '/v1/performance': 'PerformanceResponse', '/v1/snapshot': 'SnapshotResponse',
    '/v1/stream': 'StreamHello',
  };
  for (const p of API_PATHS) {
    const section = doc.split(/^## /m).find((x) => x.startsWith(`GET ${p}\n`)) ?? '';
    assert.ok(section.includes(`<!-- schema: ${expected[p]} -->`), `${p}: its section carries the ${expected[p]} schema`);
    assert.ok(schemas.has(expected[p]!));
    assert.match(section, /```sh\ncurl /, `${p}: an example`);
  }
  for (const event of ['hello', 'member', 'timeline', 'deploy', 'ping']) {
    assert.ok(schemas.has(`Stream${event[0]!.toUpperCase()}${event.slice(1)}`), `SSE ${event} has a schema`);
  }
});
