import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HandlerRunner,
  handlerEnv,
  memberLines,
  parseEventFilters,
  parseHandlerSpec,
  specMatches,
  tagEnvName,
} from '../../src/agent/handlers.ts';
import type { HandlerEvent, HandlerRun } from '../../src/agent/handlers.ts';
import { AgentError } from '../../src/agent/errors.ts';
import { waitFor as waitForValue } from '../interop/harness.ts';
import { runSerf } from '../rpc/helpers.ts';
import { startSerf, stopAll } from '../lib/agents.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

const join1: HandlerEvent = {
  type: 'member-join',
  members: [{ name: 'a', addr: { ip: '127.0.0.1', port: 7946 }, tags: { role: 'web', dc: 'x1' } }],
};
const deploy: HandlerEvent = { type: 'user', name: 'deploy', payload: enc('v2'), ltime: 7 };
const load: HandlerEvent = { type: 'query', id: 3, name: 'load', payload: enc(''), ltime: 4 };

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'kodama-handlers-'));
}

/** Bounded wait for a condition (generous under a loaded 2-core machine). */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('spec parsing: [filter=]script, comma lists, user:NAME / query:NAME, unknown event refused', () => {
  assert.deepEqual(parseHandlerSpec('handler.sh'), { filters: [{ event: '*', name: '' }], script: 'handler.sh' });
  const s = parseHandlerSpec('member-join,user:deploy,query:load=./x.sh a=b');
  assert.equal(s.script, './x.sh a=b', 'only the first = splits');
  assert.deepEqual(s.filters, [
    { event: 'member-join', name: '' },
    { event: 'user', name: 'deploy' },
    { event: 'query', name: 'load' },
  ]);
  assert.throws(() => parseHandlerSpec('member-joined=x.sh'), (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG');
  assert.throws(() => parseEventFilters('user,bogus'), AgentError);
  assert.throws(() => parseHandlerSpec('user='), AgentError);

  assert.equal(specMatches(s, join1), true);
  assert.equal(specMatches(s, { type: 'member-leave', members: [] }), false);
  assert.equal(specMatches(s, deploy), true);
  assert.equal(specMatches(s, { ...deploy, name: 'other' }), false);
  assert.equal(specMatches(s, load), true);
  assert.equal(specMatches(s, { ...load, name: 'x' }), false);
  assert.equal(specMatches(parseHandlerSpec('user=x'), { ...deploy, name: 'any' }), true);
  assert.equal(specMatches(parseHandlerSpec('*=x'), load), true);
  assert.equal(specMatches(parseHandlerSpec('user:=x'), deploy), true, 'user: with empty name = every user event');
});

test('stdin member lines: tab separated, role column, \\t and \\n escaped (doc 9.8)', () => {
  assert.equal(memberLines(join1.type === 'member-join' ? join1.members : []), 'a\t127.0.0.1\tweb\trole=web,dc=x1\n');
  assert.equal(
    memberLines([{ name: 'we\tird\nname', addr: { ip: '::1', port: 1 }, tags: { k: 'v\tw' } }]),
    'we\\tird\\nname\t::1\t\tk=v\\tw\n',
  );
});

test('env: SERF_* and KODAMA_* aliases, tag names sanitised, user/query extras', () => {
  const env = handlerEnv(deploy, { name: 'n1', tags: { role: 'db', 'dc-name.x': 'eu' } });
  for (const p of ['SERF_', 'KODAMA_']) {
    assert.equal(env[`${p}EVENT`], 'user');
    assert.equal(env[`${p}SELF_NAME`], 'n1');
    assert.equal(env[`${p}SELF_ROLE`], 'db');
    assert.equal(env[`${p}TAG_DC_NAME_X`], 'eu');
    assert.equal(env[`${p}USER_EVENT`], 'deploy');
    assert.equal(env[`${p}USER_LTIME`], '7');
  }
  const q = handlerEnv(load, { name: 'n1', tags: {} });
  assert.equal(q['SERF_QUERY_NAME'], 'load');
  assert.equal(q['SERF_QUERY_LTIME'], '4');
  assert.equal(q['SERF_SELF_ROLE'], '');
  assert.equal(q['SERF_USER_EVENT'], undefined);
  assert.equal(tagEnvName('a-b c'), 'A_B_C');
});

test('scripts run through /bin/sh with env and stdin; payload gets a newline; query output becomes the response', async () => {
  const dir = tmp();
  try {
    const runs: HandlerRun[] = [];
    const responses: [number, string][] = [];
    const out = join(dir, 'out');
    const r = new HandlerRunner({
      handlers: [
        `member-join,user=echo "$SERF_EVENT $KODAMA_SELF_NAME $SERF_TAG_ROLE $SERF_USER_EVENT $SERF_USER_LTIME" >> ${out}; cat >> ${out}`,
        'query:load=echo "resp-from-$SERF_SELF_NAME"; echo err >&2',
        'query:fail=echo no; exit 3',
      ],
      self: () => ({ name: 'me', tags: { role: 'web' } }),
      respond: (id, payload) => {
        responses.push([id, dec(payload)]);
      },
      onRun: (x) => runs.push(x),
    });
    r.handle(join1);
    r.handle({ type: 'user', name: 'deploy', payload: enc('payload-with\nnewline'), ltime: 9 });
    r.handle(load);
    r.handle({ ...load, id: 4, name: 'fail' });
    r.handle({ type: 'member-leave', members: [] }); // matches nothing
    await r.idle();
    assert.equal(
      readFileSync(out, 'utf8'),
      'member-join me web  \na\t127.0.0.1\tweb\trole=web,dc=x1\nuser me web deploy 9\npayload-with\nnewline\n',
    );
    assert.deepEqual(responses, [[3, 'resp-from-me\nerr\n']], 'exit 0 → stdout+stderr sent; exit 3 → no response');
    const c = r.counters();
    assert.equal(c.started, 4);
    assert.equal(c.failed, 1);
    assert.equal(c.responses, 1);
    assert.ok(runs.some((x) => x.exitCode === 3));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('output keeps only the last 8 KiB; a refused response is counted', async () => {
  const runs: HandlerRun[] = [];
  const r = new HandlerRunner({
    handlers: ['head -c 20000 /dev/zero | tr "\\0" a; printf END'],
    self: () => ({ name: 'me', tags: {} }),
    respond: () => 'response too large',
    onRun: (x) => runs.push(x),
  });
  r.handle(load);
  await r.idle();
  assert.equal(runs[0]!.output.length, 8192);
  assert.ok(dec(runs[0]!.output).endsWith('aaaEND'));
  assert.equal(r.counters().responseErrors, 1);
});

test('a handler that sleeps forever is killed by its timeout (whole process group) and never blocks other handlers', async () => {
  const dir = tmp();
  try {
    const pidFile = join(dir, 'child.pid');
    const fast = join(dir, 'fast');
    const logs: string[] = [];
    const r = new HandlerRunner({
      handlers: [
        // the shell's child sleeps; killing only the shell would leave it running
        `member-join=sh -c 'echo $$ > ${pidFile}; exec sleep 1000'`,
        `echo "$SERF_EVENT" >> ${fast}`,
      ],
      self: () => ({ name: 'me', tags: {} }),
      timeoutMs: 2500,
      log: (lvl, m) => logs.push(`${lvl} ${m}`),
    });
    r.handle(join1);
    r.handle(deploy);
    r.handle(join1);
    // the fast lane finishes all three events while the slow one still sleeps
    await waitFor(() => existsSync(fast) && readFileSync(fast, 'utf8').split('\n').length === 4, 'fast lane');
    assert.equal(readFileSync(fast, 'utf8'), 'member-join\nuser\nmember-join\n');
    // Serf would run the fast handler only after each slow run: at least 2 × 2.5 s here.
    assert.ok(r.counters().timedOut < 2, 'fast lane did not wait behind the slow lane');
    await waitFor(() => existsSync(pidFile), 'slow child pid');
    const childPid = Number(readFileSync(pidFile, 'utf8').trim());
    await r.idle();
    const c = r.counters();
    assert.equal(c.timedOut, 2, 'both member-join runs of the slow lane were killed');
    assert.ok(logs.some((l) => l.startsWith('ERR') && l.includes('killed after 2500ms')));
    assert.ok(logs.some((l) => l.startsWith('WARN') && l.includes('slow')));
    assert.throws(() => process.kill(childPid, 0), 'grandchild sleep was killed with the group');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bounded queue: overflow drops the oldest queued events, counts them, logs once', async () => {
  const dir = tmp();
  try {
    const seen = join(dir, 'seen');
    const logs: string[] = [];
    const gate = join(dir, 'gate');
    const r = new HandlerRunner({
      // the first run waits for the gate file, so the rest pile up in the queue
      handlers: [`user=while [ ! -e ${gate} ]; do sleep 0.05; done; echo "$SERF_USER_LTIME" >> ${seen}`],
      self: () => ({ name: 'me', tags: {} }),
      queueDepth: 3,
      log: (lvl, m) => logs.push(`${lvl} ${m}`),
    });
    for (let i = 1; i <= 10; i++) r.handle({ type: 'user', name: 'e', payload: enc(''), ltime: i });
    assert.deepEqual(r.queueDepths(), [3]);
    assert.equal(r.counters().overflowDropped, 6);
    assert.equal(logs.filter((l) => l.includes('queue full')).length, 1, 'rate-limited to one line');
    writeFileSync(gate, '');
    await r.idle();
    assert.equal(readFileSync(seen, 'utf8'), '1\n8\n9\n10\n', 'running one + the newest three, in order');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a query whose deadline passed while queued is skipped', async () => {
  let now = 0;
  const responses: number[] = [];
  const r = new HandlerRunner({
    handlers: ['query=echo hi'],
    self: () => ({ name: 'me', tags: {} }),
    respond: (id) => {
      responses.push(id);
    },
    nowMs: () => now,
  });
  now = 100;
  r.handle({ ...load, id: 1, deadlineMs: 5000 }); // starts at once
  r.handle({ ...load, id: 2, deadlineMs: 200 }); // queued behind it
  now = 300; // by the time the first finishes, the second is stale
  await r.idle();
  assert.deepEqual(responses, [1]);
  assert.equal(r.counters().expiredQueries, 1);
});

test('reload swaps handlers (SIGHUP); a bad spec changes nothing; close kills a running script', async () => {
  const dir = tmp();
  try {
    const out = join(dir, 'out');
    const r = new HandlerRunner({ handlers: [`echo one >> ${out}`], self: () => ({ name: 'me', tags: {} }) });
    r.handle(deploy);
    await r.idle();
    assert.throws(() => r.reload(['nope=x']), AgentError);
    r.reload([`echo two >> ${out}`, 'sleep 1000']);
    r.handle(deploy);
    await waitFor(() => readFileSync(out, 'utf8').includes('two'), 'reloaded handler');
    const t0 = Date.now();
    await r.close();
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(readFileSync(out, 'utf8'), 'one\ntwo\n');
    r.handle(deploy); // after close: ignored
    assert.deepEqual(r.queueDepths(), [0, 0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a script that ignores stdin (closed pipe) is not an error', async () => {
  const runs: HandlerRun[] = [];
  const r = new HandlerRunner({ handlers: ['exit 0'], self: () => ({ name: 'me', tags: {} }), onRun: (x) => runs.push(x) });
  r.handle({ type: 'user', name: 'big', payload: new Uint8Array(1 << 20).fill(0x61), ltime: 1 });
  await r.idle();
  assert.equal(runs[0]!.exitCode, 0);
  assert.equal(r.counters().failed, 0);
});

test('reload keeps the queue and running process of an unchanged handler; removed handlers lose theirs (counted)', async () => {
  const dir = tmp();
  try {
    const seen = join(dir, 'seen');
    const gate = join(dir, 'gate');
    const keep = `user=while [ ! -e ${gate} ]; do sleep 0.05; done; echo "$SERF_USER_LTIME" >> ${seen}`;
    const gone = `user=while [ ! -e ${gate} ]; do sleep 0.05; done; echo "gone $SERF_USER_LTIME" >> ${seen}`;
    const r = new HandlerRunner({ handlers: [keep, gone], self: () => ({ name: 'me', tags: {} }) });
    for (let i = 1; i <= 4; i++) r.handle({ type: 'user', name: 'e', payload: enc(''), ltime: i });
    assert.deepEqual(r.queueDepths(), [3, 3]);
    r.reload([`member-join=echo joined >> ${seen}`, keep]);
    assert.deepEqual(r.queueDepths(), [0, 3], 'the kept lane moved with its queue');
    assert.equal(r.counters().reloadDropped, 3);
    writeFileSync(gate, '');
    await r.idle();
    const lines = readFileSync(seen, 'utf8').trim().split('\n').sort();
    assert.deepEqual(lines, ['1', '2', '3', '4', 'gone 1'], 'the removed lane finished its running event only');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a handler whose detached child keeps the output pipe open does not hold its lane forever', async () => {
  const dir = tmp();
  const pidFile = join(dir, 'daemon.pid');
  try {
    const out = join(dir, 'out');
    const logs: string[] = [];
    const r = new HandlerRunner({
      handlers: [
        `user:daemon=setsid sh -c 'echo $$ > ${pidFile}; exec sleep 1000' & echo started`,
        `user:after=echo after >> ${out}`,
      ],
      self: () => ({ name: 'me', tags: {} }),
      timeoutMs: 1000,
      log: (lvl, m) => logs.push(`${lvl} ${m}`),
    });
    r.handle({ type: 'user', name: 'daemon', payload: enc(''), ltime: 1 });
    r.handle({ type: 'user', name: 'after', payload: enc(''), ltime: 2 });
    await r.idle(); // bounded: timeout 1 s + 2 s pipe grace
    assert.equal(r.counters().abandoned, 1);
    assert.equal(readFileSync(out, 'utf8'), 'after\n');
    assert.ok(logs.some((l) => l.includes('holding its output open')));
  } finally {
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('handle() never waits: 20k events into a stuck lane stay bounded and cost one spawn', async () => {
  const r = new HandlerRunner({ handlers: ['user=sleep 1000'], self: () => ({ name: 'me', tags: {} }), queueDepth: 64 });
  for (let i = 0; i < 20_000; i++) r.handle({ type: 'user', name: 'e', payload: enc(''), ltime: i });
  const c = r.counters();
  assert.equal(c.started, 1);
  assert.deepEqual(r.queueDepths(), [64]);
  assert.equal(c.overflowDropped, 20_000 - 1 - 64);
  await r.close();
  assert.equal(r.counters().finished, 1);
});

/** What a handler saw: its SERF_* environment (sorted) and stdin; the tags column is sorted
 *  because serf writes Go map order. */
function normaliseDump(text: string): string {
  const [env = '', stdin = ''] = text.split('---\n');
  const lines = stdin.split('\n').map((l) => {
    const cols = l.split('\t');
    if (cols.length === 4) cols[3] = cols[3]!.split(',').sort().join(',');
    return cols.join('\t');
  });
  return `${env}---\n${lines.join('\n')}`;
}

test('parity with a real serf agent: same env, stdin and query response for the same events', { timeout: 60_000 }, async () => {
  const dir = tmp();
  const serfDir = join(dir, 'serf');
  const oursDir = join(dir, 'ours');
  for (const d of [serfDir, oursDir]) mkdirSync(d);
  // a file, as serf users write handlers (a spec's first '=' would split an inline script)
  const dump = join(dir, 'dump.sh');
  writeFileSync(
    dump,
    `#!/bin/sh\nf="$1/$SERF_EVENT"\n{ env | grep '^SERF_' | sort; echo ---; cat; } > "$f.tmp"\nmv "$f.tmp" "$f"\n` +
      `if [ "$SERF_EVENT" = query ]; then echo "resp-from-$SERF_SELF_NAME"; fi\n`,
    { mode: 0o755 },
  );
  const script = (out: string): string => `${dump} ${out}`;
  const tags = { role: 'web', 'a.b': 'c d' };
  try {
    const s1 = await startSerf('s1', { tags, args: ['-event-handler', script(serfDir)] });
    const want = ['member-join', 'user', 'query'];
    const ev = await runSerf(['event', '-rpc-addr', s1.rpcAddr, 'deploy', 'payload-with\nnewline']);
    assert.equal(ev.code, 0, ev.stderr);
    const q = await runSerf(['query', '-rpc-addr', s1.rpcAddr, '-format', 'json', '-timeout', '5s', 'load', 'how busy']);
    assert.equal(q.code, 0, q.stderr);
    const serfResponses = (JSON.parse(q.stdout) as { Responses: Record<string, string> }).Responses;
    assert.deepEqual(serfResponses, { s1: 'resp-from-s1\n' });
    await waitForValue('serf handler dumps', 20_000, () => (want.every((e) => existsSync(join(serfDir, e))) ? true : undefined), () => s1.output());

    const ltimeOf = (file: string, v: string): number => Number(/^SERF_\w+_LTIME=(\d+)$/m.exec(readFileSync(join(serfDir, file), 'utf8'))?.[1] ?? v);
    const responses: string[] = [];
    const r = new HandlerRunner({
      handlers: [script(oursDir)],
      self: () => ({ name: 's1', tags }),
      respond: (_id, p) => {
        responses.push(dec(p));
      },
    });
    r.handle({ type: 'member-join', members: [{ name: 's1', addr: { ip: '127.0.0.1', port: s1.port }, tags }] });
    r.handle({ type: 'user', name: 'deploy', payload: enc('payload-with\nnewline'), ltime: ltimeOf('user', 'x') });
    r.handle({ type: 'query', id: 1, name: 'load', payload: enc('how busy'), ltime: ltimeOf('query', 'x') });
    await r.idle();
    assert.deepEqual(responses, ['resp-from-s1\n']);
    assert.deepEqual(readdirSync(oursDir).sort(), [...want].sort());
    for (const e of want) {
      assert.equal(normaliseDump(readFileSync(join(oursDir, e), 'utf8')), normaliseDump(readFileSync(join(serfDir, e), 'utf8')), `${e}: same env and stdin as serf`);
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an event name with a NUL byte (from the network) fails that run only, it never throws', async () => {
  const runs: HandlerRun[] = [];
  const r = new HandlerRunner({ handlers: ['echo "$SERF_USER_EVENT"'], self: () => ({ name: 'me', tags: {} }), onRun: (x) => runs.push(x) });
  assert.doesNotThrow(() => r.handle({ type: 'user', name: 'bad\u0000name', payload: enc(''), ltime: 1 }));
  r.handle({ type: 'user', name: 'good', payload: enc(''), ltime: 2 });
  await r.idle();
  assert.equal(r.counters().failed, 1);
  assert.deepEqual(runs.map((x) => dec(x.output)), ['good\n']);
});
