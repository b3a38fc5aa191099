// `kodama rolling` over 6 in-process web nodes (service `web`, HTTP-checked, exec enabled)
// behind an in-process embedded-proxy balancer, on an encrypted cluster, under light load. The
// balancer's ready count is sampled every 20 ms: batches of 2 must never leave fewer than 4
// serving, every node must run the command, and a failing command must stop at its batch and
// say where (the failed node stays drained, the rest of its batch goes back).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createAgent } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { parseBalancerSpec } from '../../src/discovery/balancer-config.ts';
import { webNodeAgentOptions } from '../../src/demo/web-node.ts';
import { startWebServer } from '../../src/demo/web-server.ts';
import type { WebServer } from '../../src/demo/web-server.ts';
import { startLoad, summarise } from '../../src/demo/loadgen.ts';
import { rollingCommand } from '../../src/cli/rolling.ts';
import type { ExecSpec } from '../../src/exec/types.ts';
import { recordIo, until } from './helpers.ts';
import { freePort } from '../lib/agents.ts';

const TOKEN = 'rolling-token';
const EXEC: ExecSpec = { enabled: true, token: TOKEN, allow: [], timeoutMs: 30_000, maxOutputBytes: 1 << 20 };
const WEB = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5', 'web-6'];

let lb: Agent;
const agents: Agent[] = [];
const pages: WebServer[] = [];
let rpc = '';
let url = '';

const served = (): { id: string; state: string }[] => lb.balancerRole?.status()[0]?.backends ?? [];
const readyCount = (): number => served().filter((b) => b.state === 'ready').length;
/** Ready count of every backend set the balancer applied (exact, whatever the sampling misses). */
const applied: { at: number; ready: number }[] = [];

before(async () => {
  const key = randomBytes(32).toString('base64');
  const port = await freePort();
  lb = createAgent({
    nodeName: 'lb-1',
    bind: '127.0.0.1:0',
    rpcAddr: '127.0.0.1:0',
    profile: 'local',
    encrypt: key,
    logSink: () => {},
    balancer: parseBalancerSpec({ driver: 'embedded', services: { web: { bind: `127.0.0.1:${port}`, drain_timeout: '5s', min_backends: 1 } } }, 'rolling test'),
  });
  await lb.start();
  agents.push(lb);
  const driver = lb.balancerRole!.driver;
  const setBackends = driver.setBackends.bind(driver);
  driver.setBackends = (service, backends) => {
    applied.push({ at: Date.now(), ready: backends.filter((b) => b.state === 'ready').length });
    return setBackends(service, backends);
  };
  url = `http://127.0.0.1:${port}/`;
  rpc = `${lb.rpcAddress!.host}:${lb.rpcAddress!.port}`;
  for (const name of WEB) {
    const page = await startWebServer({ node: name, port: 0, delayMs: 20 });
    pages.push(page);
    const a = createAgent({ ...webNodeAgentOptions({ name, join: [] }, page.port), encrypt: key, exec: EXEC, logSink: () => {} });
    await a.start();
    agents.push(a);
    await a.join([`127.0.0.1:${lb.bindAddress.port}`]);
  }
  await until('6 web backends ready on the balancer', 30_000, () => readyCount() === 6);
});

after(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => {})));
  await Promise.all(pages.map((p) => p.close().catch(() => {})));
});

async function rolling(args: string[]): Promise<{ code: number; stdout: string; stderr: string; minReady: number; minApplied: number; applies: number; maxGapMs: number; samples: number; failed: number; sent: number; ms: number }> {
  const io = recordIo({ KODAMA_RPC_ADDR: rpc, KODAMA_EXEC_TOKEN: TOKEN });
  let minReady = Infinity;
  let maxGapMs = 0;
  let samples = 0;
  let last = Date.now();
  const sampler = setInterval(() => {
    const now = Date.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    samples++;
    minReady = Math.min(minReady, readyCount());
  }, 20);
  const load = startLoad({ url, concurrency: 2, pauseMs: 10, durationMs: 60_000, timeoutMs: 5000 });
  const t0 = Date.now();
  const from = applied.length;
  try {
    const code = await rollingCommand.run(args, io);
    const ms = Date.now() - t0;
    await load.stop();
    const s = summarise(load.records);
    const during = applied.slice(from);
    const minApplied = Math.min(...during.map((a) => a.ready));
    return { code, stdout: io.out.join(''), stderr: io.err.join(''), minReady, minApplied, applies: during.length, maxGapMs, samples, failed: s.failed, sent: s.sent, ms };
  } finally {
    clearInterval(sampler);
    await load.stop().catch(() => {});
  }
}

test('rolling over 6 web nodes in batches of 2: never fewer than 4 serving, every node ran it', { timeout: 60_000 }, async (t) => {
  const r = await rolling(['-role', 'web', '-batch', '2', '-drain-timeout', '10s', '--', 'sleep 0.3; echo "restarted $KODAMA_NODE"']);
  t.diagnostic(`rolling took ${r.ms} ms; ready min ${r.minReady} over ${r.samples} samples every 20 ms (max gap ${r.maxGapMs} ms); min ${r.minApplied} over all ${r.applies} backend sets applied; load: ${r.sent} sent, ${r.failed} failed`);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const n of WEB) assert.match(r.stdout, new RegExp(`^${n}: restarted ${n}$`, 'm'));
  assert.match(r.stdout, /batch 1\/3 \(web-1, web-2\): done/);
  assert.match(r.stdout, /batch 3\/3 \(web-5, web-6\): done/);
  assert.match(r.stdout, /rolling done: 6 node\(s\) in 3 batch\(es\)/);
  // Sampled every 20 ms (a loaded machine stalls the event loop now and then, stretching a gap:
  // the exact record of every set the balancer applied is the judge, the samples confirm it
  // from the outside).
  assert.ok(r.samples >= 20, `${r.samples} samples in ${r.ms} ms`);
  assert.equal(r.minApplied, 4, 'a batch of 2 was out of rotation, and never more');
  assert.ok(r.minReady >= 4, `sampled ready min ${r.minReady}`);
  assert.ok(r.applies >= 6, `${r.applies} applies: each batch left and came back`);
  assert.equal(r.failed, 0, 'drained nodes finish their requests');
  await until('all 6 ready again', 10_000, () => readyCount() === 6);
});

test('rolling: a failing command stops at its batch and says which node and batch; it stays drained', { timeout: 60_000 }, async (t) => {
  const r = await rolling(['-role', 'web', '-batch', '2', '--', 'echo "on $KODAMA_NODE"; test "$KODAMA_NODE" != web-4 || exit 3']);
  t.diagnostic(`stopped after ${r.ms} ms; ready min ${r.minReady} sampled, ${r.minApplied} applied; load: ${r.sent} sent, ${r.failed} failed`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /rolling stopped at batch 2\/3 \(run\) on web-4: exit 3; web-4 left drained \(fix, then kodama rolling -undrain -node …\); web-3 put back in rotation/, r.stderr);
  assert.match(r.stderr, /1 batch\(es\) done; not run: web-5, web-6/);
  assert.doesNotMatch(r.stdout, /^web-5:/m);
  assert.ok(r.minReady >= 4 && r.minApplied >= 4, `ready min ${r.minReady} sampled, ${r.minApplied} applied`);
  assert.equal(r.failed, 0);
  await until('web-3 back, web-4 out of rotation', 10_000, () => readyCount() === 5 && !served().some((b) => b.id === 'web-4' && b.state === 'ready'));
  const io = recordIo({ KODAMA_RPC_ADDR: rpc, KODAMA_EXEC_TOKEN: TOKEN });
  const code = await rollingCommand.run(['-undrain', '-node', 'web-4', '-service', 'web'], io);
  assert.equal(code, 0, io.out.join('') + io.err.join(''));
  assert.match(io.out.join(''), /web-4 back in rotation on 1 balancer\(s\) after \d+\.\ds/);
  await until('the balancer serves web-4 again', 2000, () => readyCount() === 6);
});

test('rolling: usage and no balancer', async () => {
  const io = recordIo({ KODAMA_RPC_ADDR: rpc, KODAMA_EXEC_TOKEN: TOKEN });
  assert.equal(await rollingCommand.run(['--help'], io), 0);
  assert.match(io.out.join(''), /Usage: kodama rolling/);
  const noLb = recordIo({ KODAMA_RPC_ADDR: rpc, KODAMA_EXEC_TOKEN: TOKEN });
  assert.equal(await rollingCommand.run(['-role', 'web', '-service', 'api', '--', 'true'], noLb), 1);
  assert.match(noLb.err.join(''), /no alive balancer serves api/);
});
