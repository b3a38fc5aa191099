// The node side on its own: a fake host delivers `kodama-exec` queries and keeps the answers,
// so refusals, the byte budget of answers, re-asked polls and the timeout are checked directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentQuery } from '../../src/agent/agent.ts';
import { startExecutor } from '../../src/exec/executor.ts';
import type { ExecHost } from '../../src/exec/executor.ts';
import { decodeAnswer, encodeRequest } from '../../src/exec/protocol.ts';
import type { ExecAnswer, ExecRequest } from '../../src/exec/protocol.ts';
import { EXEC_QUERY } from '../../src/exec/types.ts';
import type { ExecSpec } from '../../src/exec/types.ts';

const SPEC: ExecSpec = { enabled: true, token: 'tok', allow: [], timeoutMs: 60_000, maxOutputBytes: 1 << 20 };

function host(encrypted = true): ExecHost & { ask(r: ExecRequest): ExecAnswer; lines: string[]; drained: boolean[] } {
  let fn: ((q: AgentQuery) => void) | undefined;
  const lines: string[] = [];
  const drained: boolean[] = [];
  return {
    nodeName: 'web-1',
    logger: { log: (level, msg) => lines.push(`[${level}] ${msg}`) },
    on: (_t, f) => {
      fn = f;
      return () => (fn = undefined);
    },
    isEncrypted: () => encrypted,
    setServicesDraining: (d) => drained.push(d),
    lines,
    drained,
    ask(r) {
      let got: Uint8Array | undefined;
      fn?.({ type: 'query', id: 1, name: EXEC_QUERY, payload: encodeRequest(r), ltime: 1, deadlineMs: 0, sourceNode: 'ops-1',
        respond: (p) => {
          assert.ok(p.length <= 1024 - 64 - 5, `answer of ${p.length} bytes exceeds the response budget`);
          got = p;
        } });
      assert.ok(got !== undefined, 'no answer');
      const a = decodeAnswer(got);
      assert.ok(a !== undefined, 'undecodable answer');
      return a;
    },
  };
}

const code = (a: ExecAnswer): string => (a.kind === 'refused' ? a.code : a.kind);

async function pollUntilDone(h: ReturnType<typeof host>, id: string): Promise<{ out: Buffer; exit: number | null; polls: number; timedOut: boolean }> {
  const parts: Buffer[] = [];
  let off = 0;
  for (let i = 0; i < 400; i++) {
    const a = h.ask({ op: 'poll', token: 'tok', id, off: { 'web-1': off } });
    assert.equal(a.kind, 'run');
    if (a.kind !== 'run') break;
    assert.equal(a.status.off, off);
    parts.push(Buffer.from(a.status.chunk));
    off += a.status.chunk.length;
    if (a.status.done && off === a.status.total) return { out: Buffer.concat(parts), exit: a.status.exitCode, polls: i + 1, timedOut: a.status.timedOut === true };
    if (a.status.chunk.length === 0) await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail('run did not finish');
}

test('executor refuses: disabled, unencrypted, no/wrong token, not allowed, unknown run — each logged', async () => {
  const off = host();
  const ex0 = startExecutor(off, { ...SPEC, enabled: false });
  const a0 = off.ask({ op: 'run', token: 'tok', id: 'r1', cmd: 'true' });
  assert.equal(code(a0), 'ERR_EXEC_DISABLED');
  assert.match(a0.kind === 'refused' ? a0.message : '', /-enable-exec/);
  await ex0.stop();

  const clear = host(false);
  const ex1 = startExecutor(clear, SPEC);
  const a1 = clear.ask({ op: 'run', token: 'tok', id: 'r1', cmd: 'true' });
  assert.equal(code(a1), 'ERR_EXEC_NOT_ENCRYPTED');
  assert.match(a1.kind === 'refused' ? a1.message : '', /-encrypt/);
  await ex1.stop();

  const h = host();
  const ex = startExecutor(h, { ...SPEC, allow: ['echo *'] });
  assert.match(JSON.stringify(h.ask({ op: 'run', token: '', id: 'r1', cmd: 'echo hi' })), /ERR_EXEC_TOKEN.*--token.*KODAMA_EXEC_TOKEN/);
  assert.equal(code(h.ask({ op: 'run', token: 'tok2', id: 'r1', cmd: 'echo hi' })), 'ERR_EXEC_TOKEN');
  const na = h.ask({ op: 'run', token: 'tok', id: 'r1', cmd: 'rm -rf /tmp/nothing' });
  assert.equal(code(na), 'ERR_EXEC_NOT_ALLOWED');
  assert.match(na.kind === 'refused' ? na.message : '', /exec\.allow/);
  assert.equal(code(h.ask({ op: 'poll', token: 'tok', id: 'nope', off: {} })), 'ERR_EXEC_UNKNOWN_RUN');
  assert.ok(h.lines.some((l) => /refused run by ops-1 `rm -rf \/tmp\/nothing`: not in exec.allow/.test(l)), h.lines.join('\n'));
  assert.ok(h.lines.some((l) => /wrong token/.test(l)));
  assert.equal(ex.counters()['runs_started'], 0, 'nothing ran');
  await ex.stop();
});

test('executor runs once per id; output larger than many answers is fetched in full by offset; exit code and log line', async (t) => {
  const h = host();
  const ex = startExecutor(h, SPEC);
  t.after(() => ex.stop());
  const cmd = 'i=0; while [ $i -lt 300 ]; do echo "line $i of $KODAMA_NODE"; i=$((i+1)); done; exit 3';
  assert.equal(code(h.ask({ op: 'run', token: 'tok', id: 'r1', cmd })), 'run');
  assert.equal(code(h.ask({ op: 'run', token: 'tok', id: 'r1', cmd })), 'run'); // re-asked start
  const r = await pollUntilDone(h, 'r1');
  const lines = r.out.toString().trimEnd().split('\n');
  assert.equal(lines.length, 300);
  assert.equal(lines[299], 'line 299 of web-1');
  assert.equal(r.exit, 3);
  assert.equal(ex.counters()['runs_started'], 1, 'a re-asked start does not run twice');
  t.diagnostic(`${r.out.length} bytes in ${r.polls} polls`);
  // A re-asked poll at an old offset gets the same bytes again (a lost answer only delays).
  const again = h.ask({ op: 'poll', token: 'tok', id: 'r1', off: { 'web-1': 0 } });
  assert.equal(again.kind === 'run' ? Buffer.from(again.status.chunk).toString().split('\n')[0] : '', 'line 0 of web-1');
  // A slice further on, bounded by `max` (pipelined polls ask several at once).
  const slice = h.ask({ op: 'poll', token: 'tok', id: 'r1', off: { 'web-1': 1000 }, max: 100 });
  assert.ok(slice.kind === 'run');
  assert.equal(slice.status.off, 1000);
  assert.deepEqual(Buffer.from(slice.status.chunk), r.out.subarray(1000, 1100));
  assert.ok(h.lines.some((l) => /exec: run by ops-1 `i=0.*` → exit 3 in \d+\.\ds/.test(l)), h.lines.join('\n'));
});

test('executor kills the process group at the timeout and cuts output at max_output', async (t) => {
  const h = host();
  const ex = startExecutor(h, { ...SPEC, timeoutMs: 300, maxOutputBytes: 2048 }, { killGraceMs: 200 });
  t.after(() => ex.stop());
  const started = Date.now();
  h.ask({ op: 'run', token: 'tok', id: 'slow', cmd: 'sleep 30 & sleep 30; echo never' });
  const r = await pollUntilDone(h, 'slow');
  assert.equal(r.timedOut, true);
  assert.ok(Date.now() - started < 5000, 'the background sleep did not keep the run alive');
  assert.match(r.out.toString(), /timed out after 0\.3s/);
  h.ask({ op: 'run', token: 'tok', id: 'big', cmd: 'head -c 10000 /dev/zero | tr "\\0" x' });
  const big = await pollUntilDone(h, 'big');
  assert.equal(big.out.length, 2048);
  assert.equal(big.exit, 0);
});

test('executor drain/undrain set the services draining (token needed)', async () => {
  const h = host();
  const ex = startExecutor(h, SPEC);
  assert.equal(code(h.ask({ op: 'drain', token: 'bad' })), 'ERR_EXEC_TOKEN');
  assert.deepEqual(h.ask({ op: 'drain', token: 'tok' }), { kind: 'drain', draining: true });
  assert.deepEqual(h.ask({ op: 'undrain', token: 'tok' }), { kind: 'drain', draining: false });
  assert.deepEqual(h.drained, [true, false]);
  await ex.stop();
});
