// A reload that changes what a subsystem reads only at start (the containers section, the metrics
// settings) says so in the log and what to do, instead of keeping the old values in silence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent } from '../../src/index.ts';
import { until } from '../cli/helpers.ts';

test('reload: a changed containers section or metrics interval is logged as needing a restart; unchanged ones are not', async () => {
  const lines: string[] = [];
  const containers = { socket: '/nonexistent/engine.sock', pollMs: 1000 };
  const a = createAgent({ nodeName: 'r1', bind: '127.0.0.1:0', profile: 'local', metricsIntervalMs: 10_000, containers, logSink: (l) => lines.push(l) });
  await a.start();
  try {
    await a.reload({ sections: { containers, metricsIntervalMs: 10_000 } });
    await until('the first reload logged', 5000, () => lines.some((l) => l.includes('agent: configuration reloaded')));
    assert.ok(!lines.some((l) => /restart the agent/.test(l)), lines.join('\n'));
    await a.reload({ sections: { containers: { ...containers, socket: '/run/podman/podman.sock' }, metricsIntervalMs: 30_000 } });
    await until('the second reload logged', 5000, () => lines.filter((l) => l.includes('agent: configuration reloaded')).length === 2);
    assert.ok(lines.some((l) => /\[WARN\] agent: reload: the containers section changed; .* restart the agent to apply it/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /\[WARN\] agent: reload: metrics_interval or metrics_history changed; .* restart the agent to apply them/.test(l)), lines.join('\n'));
  } finally {
    await a.stop();
  }
});
