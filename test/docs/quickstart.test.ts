// docs/quickstart.md runs as written: its ```sh blocks, in order, in one bash (as a reader pastes
// them into one shell), from the repository's root, with `set -e` so the first command that fails
// fails the test. The page uses the ports a reader would (7946, 7373, 8080, …), so it runs in a
// network namespace of its own, with only a loopback: nothing else on this machine can hold those
// ports, and it cannot disturb anything either. Needs root (ip netns); otherwise it skips, saying why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO } from '../lib/agents.ts';
import { requireNetns } from '../netns/net.ts';

const PAGE = join(REPO, 'docs/quickstart.md');
/** The whole page: agents start, a deploy bakes, a balancer restarts on HAProxy. */
const RUN_TIMEOUT_MS = 240_000;

/** The page's ```sh blocks, in order. */
export function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error?.message}`);
}

test('docs/quickstart.md: every command block runs as written, in order, and succeeds', { timeout: RUN_TIMEOUT_MS + 30_000 }, async (t) => {
  if (!requireNetns(t)) return;
  const blocks = shellBlocks(readFileSync(PAGE, 'utf8'));
  assert.ok(blocks.length >= 8, `the page has its steps (${blocks.length} sh blocks)`);
  // Each block is followed by a marker with its time and the shell's directory.
  const script = ['set -e', ...blocks.map((b, i) => `${b}\necho "@@ block ${i + 1} done $(date +%s%3N) $PWD"`)].join('\n');
  const ns = `kq${process.pid}`;
  ip('netns', 'add', ns);
  let out = '';
  try {
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn('ip', ['netns', 'exec', ns, 'bash', '-c', script], {
        cwd: REPO,
        env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      if (process.env['KODAMA_QUICKSTART_ECHO'] === '1') {
        child.stdout.pipe(process.stderr);
        child.stderr.pipe(process.stderr);
      }
      const timer = setTimeout(() => {
        out += `\n(the page did not finish within ${RUN_TIMEOUT_MS / 1000} s: stopped)`;
        child.kill('SIGKILL');
      }, RUN_TIMEOUT_MS);
      // 'exit', not 'close': the page's background processes hold the pipes open.
      child.on('exit', (c) => {
        clearTimeout(timer);
        setTimeout(() => resolve(c), 100); // the last output still in the pipe
      });
    });
    const marks = [...out.matchAll(/^@@ block (\d+) done (\d+) (.*)$/gm)].map((m) => ({ block: Number(m[1]), at: Number(m[2]), dir: m[3]! }));
    let last = started;
    for (const m of marks) {
      t.diagnostic(`block ${m.block}: ${((m.at - last) / 1000).toFixed(1)} s`);
      last = m.at;
    }
    t.diagnostic(`the whole page: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const scratch = marks.at(-1)?.dir;
    let logs = '';
    if (scratch !== undefined && scratch.startsWith(tmpdir()) && scratch !== tmpdir()) {
      // The page's logs, for a failure's report, then its scratch directory goes.
      for (const log of ['lb.log', 'lb-haproxy.log', 'web1.log', 'web3.log']) {
        try {
          if (code !== 0) logs += `\n--- ${log} (last 15 lines) ---\n${readFileSync(join(scratch, log), 'utf8').split('\n').slice(-16).join('\n')}`;
        } catch {
          // not written yet
        }
      }
      rmSync(scratch, { recursive: true, force: true });
    }
    const failedIn = (marks.at(-1)?.block ?? 0) + 1;
    assert.equal(code, 0, `block ${failedIn} of docs/quickstart.md failed (exit ${code}):\n${blocks[failedIn - 1] ?? ''}\n--- output ---\n${out.slice(-3000)}${logs}`);
    assert.equal(marks.length, blocks.length, 'every block ran');
    // What the reader is told to see.
    assert.match(out, /hello from web1\n[\s\S]*hello from web2|hello from web2\n[\s\S]*hello from web1/, 'step 4: both backends answer');
    const afterDeploy = out.slice(out.indexOf('@@ block 5 done'));
    assert.match(afterDeploy, /hello from web3/, 'after the blue-green switch, web3 answers');
    const lastAnswers = out.slice(out.indexOf('@@ block 6 done'), out.indexOf('@@ block 7 done')).match(/hello from \w+/g) ?? [];
    assert.deepEqual([...new Set(lastAnswers)], ['hello from web3'], 'on HAProxy, only web3 (the route the deploy set)');
  } finally {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split(/\s+/).filter((p) => p !== '');
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    spawnSync('ip', ['netns', 'del', ns]);
  }
});
