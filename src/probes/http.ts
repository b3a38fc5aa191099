// HTTP probe: GET <path> on a fresh connection (no keep-alive pool, so a dead server is seen as
// dead at once), optional Host header; ok iff the status is the expected one. The body is not
// read: the status line is the answer, and a huge body must not cost us anything.

import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ProbeResult, ProbeTarget } from './types.ts';
import { clipOutput } from './types.ts';

export function probeHttp(
  spec: { path: string; expectStatus: number; host?: string; timeoutMs: number },
  target: ProbeTarget,
): Promise<ProbeResult> {
  const started = performance.now();
  const what = `GET ${spec.path}`;
  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    const finish = (status: ProbeResult['status'], output: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ status, output: clipOutput(output), durationMs: performance.now() - started });
    };
    const req = request({
      host: target.host,
      port: target.port,
      path: spec.path,
      method: 'GET',
      agent: false,
      headers: { 'user-agent': 'kodama-check', ...(spec.host !== undefined ? { host: spec.host } : {}) },
    });
    const timer = setTimeout(() => finish(2, `${what}: timed out after ${spec.timeoutMs} ms`), spec.timeoutMs);
    req.on('response', (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      if (code === spec.expectStatus) finish(0, `${what}: HTTP ${code}`);
      else finish(2, `${what}: HTTP ${code}, expected ${spec.expectStatus}`);
    });
    // Node's messages already name the cause: "connect ECONNREFUSED 127.0.0.1:8080".
    req.on('error', (e) => finish(2, `${what}: ${e.message}`));
    req.end();
  });
}
