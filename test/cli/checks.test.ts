// `kodama checks` against a real cluster of in-process agents on 127.0.0.1: the command talks to
// one agent's RPC, which sends the real `kodama-checks` query through the cluster. The nodes here
// run no checks of their own: they answer the query from a query handler with fixed
// ChecksReports, so that exact figures can be asserted: filters, grouping, "no checks" for silent
// members, left members hidden, failed members shown, aggregation, JSON, the Nagios exit code,
// usage errors. (checks-agents.test.ts runs agents with real checks.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { runCli } from '../../src/cli/main.ts';
import { CHECKS_QUERY } from '../../src/checks/types.ts';
import type { ChecksReport } from '../../src/checks/types.ts';
import { formatText } from '../../src/cli/checks.ts';
import { recordIo, until } from './helpers.ts';

const GiB = 1024 ** 3;

function report(node: string, role: string, checks: ChecksReport['checks'], load: [number, number, number], memUsedGiB: number, cpuPercent: number): ChecksReport {
  return {
    node,
    tags: { role },
    checks,
    metrics: { load1: load[0], load5: load[1], load15: load[2], memUsedBytes: memUsedGiB * GiB, memTotalBytes: 8 * GiB, cpuPercent },
  };
}

const NOW = Date.now();
const chk = (name: string, status: 0 | 1 | 2 | 3, occurrences: number, history: string, output: string, flapping = false): ChecksReport['checks'][number] => ({
  name,
  status,
  output,
  occurrences,
  flapping,
  history,
  lastRunAt: NOW - 3000,
});

/** What each node answers (undefined: no handler, like a serf agent or a node without checks). */
const ANSWERS: Record<string, { tags: Record<string, string>; answer?: string }> = {
  'web-1': {
    tags: { role: 'web' },
    answer: JSON.stringify(
      report('web-1', 'web', [chk('disk', 2, 3, '000222', 'DISK CRITICAL - free space: / 3%'), chk('load', 0, 12, '000000', 'OK - load average: 0.50')], [0.5, 0.4, 0.3], 2, 10),
    ),
  },
  'web-2': {
    tags: { role: 'web' },
    answer: JSON.stringify(
      report('web-2', 'web', [chk('disk', 0, 20, '0000', 'DISK OK'), chk('load', 1, 1, '01010', 'WARNING - load average: 4.20', true)], [4.2, 2.0, 1.1], 6, 50),
    ),
  },
  'web-3': { tags: { role: 'web' } }, // alive, no checks, never answers
  'db-1': {
    tags: { role: 'db' },
    answer: JSON.stringify(report('db-1', 'db', [chk('pg', 0, 5, '00000', 'PG OK')], [1, 1, 1], 4, 20)),
  },
  'odd-1': { tags: { role: 'odd' }, answer: 'this is not JSON' },
  // role "webserver": a tag filter role=web must not pick it (serf's tag filters are regexps)
  'webserver-1': {
    tags: { role: 'webserver' },
    answer: JSON.stringify(report('webserver-1', 'webserver', [chk('x', 2, 1, '2', 'boom')], [0, 0, 0], 1, 1)),
  },
  gone: { tags: { role: 'web' } }, // leaves: must not be shown
  dead: { tags: { role: 'web' } }, // stopped without leaving: failed
};

const agents = new Map<string, Agent>();
/** Who received the kodama-checks query (the filters are applied by the cluster, not the CLI). */
const received = new Map<string, number>();
let rpc = '';

before(async () => {
  for (const [name, spec] of Object.entries(ANSWERS)) {
    const a = createAgent({
      nodeName: name,
      bind: '127.0.0.1:0',
      rpcAddr: name === 'web-1' ? '127.0.0.1:0' : null,
      profile: 'local',
      tags: spec.tags,
      logSink: () => {},
      leavePropagateDelayMs: 200,
      broadcastTimeoutMs: 2000,
    });
    a.on('query', (q) => {
      if (q.name !== CHECKS_QUERY) return;
      received.set(name, (received.get(name) ?? 0) + 1);
      if (spec.answer !== undefined) q.respond(new TextEncoder().encode(spec.answer));
    });
    await a.start();
    agents.set(name, a);
  }
  const first = agents.get('web-1')!;
  rpc = `${first.rpcAddress!.host}:${first.rpcAddress!.port}`;
  const seed = `127.0.0.1:${first.bindAddress.port}`;
  for (const [name, a] of agents) if (name !== 'web-1') await a.join([seed]);
  await until('all members alive', 20_000, () => first.members().filter((m) => m.status === 'alive').length === agents.size);
  await agents.get('gone')!.leave();
  await agents.get('gone')!.stop();
  await agents.get('dead')!.stop(); // no leave: the others find it failed
  await until('gone left and dead failed', 40_000, () => {
    const st = new Map(first.members().map((m) => [m.name, m.status]));
    return st.get('gone') === 'left' && st.get('dead') === 'failed';
  });
});

after(async () => {
  await Promise.all([...agents.values()].map((a) => a.stop().catch(() => {})));
});

async function kodama(args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const io = recordIo({ KODAMA_RPC_ADDR: rpc });
  const t0 = Date.now();
  const code = await runCli(args, io);
  return { code, stdout: io.out.join(''), stderr: io.err.join(''), ms: Date.now() - t0 };
}

test('text: grouped by role then node, silent members as "no checks", left members hidden, failed shown; exit 2 on critical', async () => {
  const r = await kodama(['checks', '-timeout=3s']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  const out = r.stdout;
  // roles in order, each once
  const roleLines = out.split('\n').filter((l) => /^(role |\(no role\))/.test(l));
  assert.deepEqual(roleLines, ['role db', 'role odd', 'role web', 'role webserver']);
  const web = out.slice(out.indexOf('role web\n'), out.indexOf('role webserver'));
  assert.match(web, /^ {2}web-1\n {4}disk +critical +3x +\.\.\.xxx +\d+s ago +DISK CRITICAL - free space: \/ 3%\n {4}load +passing +12x +\.\.\.\.\.\. /m);
  assert.match(web, /^ {4}load +warning +1x +flapping +\.w\.w\. .*WARNING - load average: 4\.20$/m);
  assert.match(web, /^ {2}web-3 {2}no checks$/m);
  assert.match(web, /^ {2}dead {2}failed$/m);
  assert.doesNotMatch(out, /gone/);
  assert.match(out, /^ {2}odd-1 {2}unreadable answer$/m);
  // node order within a role
  assert.ok(web.indexOf('dead') < web.indexOf('web-1') && web.indexOf('web-1') < web.indexOf('web-2') && web.indexOf('web-2') < web.indexOf('web-3'));
});

test('-role sends the query to that role only (exact match, not a regexp) and shows only it', async () => {
  const before = new Map(received);
  const r = await kodama(['checks', '-role', 'web', '-timeout=3s']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /webserver|db-1|odd-1/);
  assert.match(r.stdout, /^role web$/m);
  const got = (): string[] => [...received].filter(([n, c]) => c > (before.get(n) ?? 0)).map(([n]) => n).sort();
  // Gossip may still be carrying it: give the others time to (wrongly) process it.
  await new Promise((r) => setTimeout(r, 1000));
  // web-3 (no chk tag, not waited for) may or may not have got it by now
  assert.deepEqual(got().filter((n) => n !== 'web-3'), ['web-1', 'web-2']);
});

test('-node and -state filter; no critical shown → exit 0', async () => {
  const r = await kodama(['checks', '-node=web-2', '-node=db-1', '-state', 'passing', '-timeout=3s']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ {4}disk +passing +20x/m);
  assert.match(r.stdout, /^ {4}pg +passing +5x/m);
  assert.doesNotMatch(r.stdout, /warning|web-1|web-3|dead/);
  const w = await kodama(['checks', '-state=warning', '-format=json', '-timeout=3s']);
  assert.equal(w.code, 0);
  const doc = JSON.parse(w.stdout) as { nodes: { node: string; checks: { name: string; state: string; flapping: boolean }[] }[]; counts: Record<string, number> };
  assert.deepEqual(doc.nodes.map((n) => [n.node, n.checks.map((c) => `${c.name}:${c.state}:${c.flapping}`)]), [['web-2', ['load:warning:true']]]);
  assert.deepEqual(doc.counts, { passing: 0, warning: 1, critical: 0, unknown: 0 });
});

test('-format json: the documented shape, stable order, silent and failed members included', async () => {
  const r = await kodama(['checks', '-role=web', '-format=json', '-timeout=3s']);
  assert.equal(r.code, 2);
  const doc = JSON.parse(r.stdout) as {
    nodes: { node: string; role: string; status: string; answered: boolean; summary: string | null; truncated: boolean; checks: Record<string, unknown>[]; metrics: Record<string, number> | null }[];
    counts: Record<string, number>;
  };
  assert.deepEqual(doc.nodes.map((n) => [n.node, n.status, n.answered, n.summary]), [
    ['dead', 'failed', false, null],
    ['web-1', 'alive', true, null],
    ['web-2', 'alive', true, null],
    ['web-3', 'alive', false, null],
  ]);
  const w1 = doc.nodes[1]!;
  assert.deepEqual(w1.checks[0], {
    name: 'disk', state: 'critical', status: 2, occurrences: 3, flapping: false, history: '000222',
    output: 'DISK CRITICAL - free space: / 3%', last_run_at: NOW - 3000,
  });
  assert.deepEqual(w1.metrics, { load1: 0.5, load5: 0.4, load15: 0.3, mem_used_bytes: 2 * GiB, mem_total_bytes: 8 * GiB, cpu_percent: 10 });
  assert.equal(doc.nodes[3]!.metrics, null);
  assert.deepEqual(doc.counts, { passing: 2, warning: 1, critical: 1, unknown: 0 });
});

test('-aggregate: per role counts, load avg/max, memory sum and percent, cpu avg/max', async () => {
  const r = await kodama(['checks', '-role=web', '-aggregate', '-format=json', '-timeout=3s']);
  assert.equal(r.code, 2, r.stderr);
  const doc = JSON.parse(r.stdout) as { roles: Record<string, unknown>[] };
  assert.deepEqual(doc.roles, [
    {
      role: 'web',
      nodes: 4,
      answered: 2,
      counts: { passing: 2, warning: 1, critical: 1, unknown: 0 },
      load1: { avg: 2.35, max: 4.2 },
      load5: { avg: 1.2, max: 2 },
      load15: { avg: 0.7, max: 1.1 },
      memory: { used_bytes: 8 * GiB, total_bytes: 16 * GiB, percent: 50 },
      cpu_percent: { avg: 30, max: 50 },
    },
  ]);
  const t = await kodama(['checks', '-aggregate', '-timeout=3s']);
  assert.match(t.stdout, /^role web: 4 nodes, 2 answered\n {2}checks +passing 2 {2}warning 1 {2}critical 1 {2}unknown 0\n {2}load 1m +avg 2\.35 max 4\.20\n/m);
  assert.match(t.stdout, /^ {2}memory +8\.0 GiB \/ 16\.0 GiB \(50\.0%\)$/m);
  assert.match(t.stdout, /^ {2}cpu +avg 30\.0% max 50\.0%$/m);
  assert.match(t.stdout, /^role db: 1 node, 1 answered\n/m);
  assert.match(t.stdout, /^role odd: 1 node, 0 answered\n(?: {2}.*\n)* {2}memory +-$/m);
});

test('--help documents the JSON shape and exit codes; bad flags are usage errors that say what is allowed', async () => {
  const h = await kodama(['checks', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: kodama checks/);
  assert.match(h.stdout, /"nodes": \[/);
  assert.match(h.stdout, /Exit status .*0 when nothing shown is critical, 2 when/s);
  assert.match(h.stdout, /-rpc-addr/);
  for (const [args, msg] of [
    [['-state=bad'], /Invalid state: bad \(use passing, warning, critical or unknown\)/],
    [['-format=xml'], /Invalid format: xml/],
    [['-aggregate', '-state=critical'], /-state cannot be combined with -aggregate/],
    [['-timeout=soon'], /invalid duration "soon"/],
    [['-bogus'], /flag provided but not defined: -bogus/],
    [['extra'], /unexpected argument: extra/],
  ] as const) {
    const r = await kodama(['checks', ...args]);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, msg);
    assert.match(r.stderr, /Usage: kodama checks/);
  }
});

test('-node naming no member: exit 1 and where to look', async () => {
  const r = await kodama(['checks', '-node=web-1', '-node=nosuch']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'No member named nosuch (see "kodama members").\n');
  const g = await kodama(['checks', '-node=gone', '-timeout=1s']);
  assert.equal(g.code, 0, 'a member that left is known, just not shown');
  assert.equal(g.stdout, 'No members match.\n');
});

test('no agent at -rpc-addr: one line saying how to start one', async () => {
  const io = recordIo();
  const code = await runCli(['checks', '-rpc-addr=127.0.0.1:1'], io);
  assert.equal(code, 1);
  assert.match(io.err.join(''), /^Error connecting to agent: .*kodama agent/);
});

test('a node running checks (chk tag) that did not answer is shown with its summary tag', () => {
  const text = formatText(
    [
      { node: 'q-1', role: 'q', status: 'alive', report: undefined, badAnswer: false, summary: '3;x=c2' },
      { node: 'q-2', role: 'q', status: 'alive', report: undefined, badAnswer: false, summary: undefined },
    ],
    undefined,
    Date.now(),
  );
  assert.equal(text, 'role q\n  q-1  no answer (summary tag: 3;x=c2)\n  q-2  no checks');
});
