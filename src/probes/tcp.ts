// TCP probe: can we open a connection to the service's port within the timeout? Closed at once.

import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ProbeResult, ProbeTarget } from './types.ts';
import { clipOutput } from './types.ts';

export function probeTcp(spec: { timeoutMs: number }, target: ProbeTarget): Promise<ProbeResult> {
  const started = performance.now();
  const where = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    const finish = (status: ProbeResult['status'], output: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status, output: clipOutput(output), durationMs: performance.now() - started });
    };
    const socket = connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => finish(2, `TCP ${where}: timed out after ${spec.timeoutMs} ms`), spec.timeoutMs);
    socket.once('connect', () => finish(0, `TCP ${where}: connected`));
    socket.once('error', (e) => finish(2, `TCP ${where}: ${e.message}`));
  });
}
