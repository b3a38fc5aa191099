// metrics_interval / metrics_history: read from the flag, env and files; nonsense refused with
// what is accepted; `kodama agent` samples every 10 s unless told otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent } from '../../src/index.ts';
import { agentOptions, readAgentConfig } from '../../src/cli/agent.ts';

const opts = (args: string[], env: Record<string, string> = {}): ReturnType<typeof agentOptions> => agentOptions(readAgentConfig(['-node', 'a', ...args], env).config, () => {});

test('kodama agent samples every 10 s by default; -metrics-interval and KODAMA_METRICS_INTERVAL change it, 0 turns it off', () => {
  assert.equal(opts([]).metricsIntervalMs, 10_000);
  assert.equal(opts(['-metrics-interval', '30s']).metricsIntervalMs, 30_000);
  assert.equal(opts([], { KODAMA_METRICS_INTERVAL: '0' }).metricsIntervalMs, 0);
});

test('an agent refuses a sampling interval under 1 s and a history that holds no sample', () => {
  assert.throws(() => createAgent({ nodeName: 'a', bind: '127.0.0.1:0', metricsIntervalMs: 500 }), /metrics_interval must be at least 1s \(or 0 to turn sampling off\)/);
  assert.throws(() => createAgent({ nodeName: 'a', bind: '127.0.0.1:0', metricsIntervalMs: 10_000, metricsHistoryMs: 5000 }), /metrics_history must hold 1 to 100000 samples of metrics_interval \(10s\)/);
});
