// An existing Serf handler script, written the way serf users write them (member lines on stdin,
// `cut -f` on the tab-separated fields, `$SERF_EVENT`), keeps an HAProxy backend in sync with the
// cluster and validates the result with `haproxy -c`. The same file runs unchanged under a real
// `serf agent -event-handler` and under `kodama agent -event-handler`, both watching one mixed
// cluster; the two haproxy.cfg files must end up identical after joins, a graceful leave and a
// kill -9. The kodama agent also runs a handler that hangs forever on member-join, listed first:
// under serf that would stall every later handler; under kodama it holds only its own lane.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../interop/harness.ts';
import { runSerf } from '../rpc/helpers.ts';
import { startKodama, startSerf, stopAll } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';

const HANDLER = `#!/bin/sh
# Serf event handler: keep the HAProxy "app" backend equal to the cluster's web nodes.
#   serf agent -event-handler "member-join,member-leave,member-failed=haproxy-update.sh"
set -eu
CFG=\${HAPROXY_CFG:-/etc/haproxy/haproxy.cfg}
servers=$(grep '^    server ' "$CFG" || true)
while IFS= read -r line; do
  name=$(printf '%s\\n' "$line" | cut -f1)
  ip=$(printf '%s\\n' "$line" | cut -f2)
  role=$(printf '%s\\n' "$line" | cut -f3)
  servers=$(printf '%s\\n' "$servers" | grep -v "^    server $name " || true)
  if [ "$SERF_EVENT" = member-join ] && [ "$role" = web ]; then
    servers="$servers
    server $name $ip:8080 check"
  fi
done
{ sed '/^    server /d' "$CFG"; printf '%s\\n' "$servers" | grep '^    server ' | sort || true; } > "$CFG.new"
haproxy -c -q -f "$CFG.new"
mv "$CFG.new" "$CFG"
echo "$SERF_EVENT handled by $SERF_SELF_NAME"
`;

const BASE_CFG = `global
    maxconn 256

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend www
    bind 127.0.0.1:18080
    default_backend app

backend app
    balance roundrobin
`;

const servers = (cfg: string): string[] => cfg.split('\n').filter((l) => l.startsWith('    server '));

test('an HAProxy-rewriting serf handler runs unchanged under kodama and serf with the same result', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kodama-haproxy-'));
  const script = join(dir, 'haproxy-update.sh');
  writeFileSync(script, HANDLER);
  chmodSync(script, 0o755);
  const cfgSerf = join(dir, 'serf-haproxy.cfg');
  const cfgKodama = join(dir, 'kodama-haproxy.cfg');
  writeFileSync(cfgSerf, BASE_CFG);
  writeFileSync(cfgKodama, BASE_CFG);
  const spec = `member-join,member-leave,member-failed=${script}`;
  const hungPids = join(dir, 'hung.pids');
  const procs: AgentProcess[] = [];
  const context = (): string => procs.map((p) => `--- ${p.name}\n${p.output().slice(-1500)}`).join('\n');
  try {
    const w1 = await startSerf('w1', { tags: { role: 'web' } });
    procs.push(w1);
    const seed = [`127.0.0.1:${w1.port}`];
    const obsSerf = await startSerf('obs-serf', { tags: { role: 'lb' }, join: seed, args: ['-event-handler', spec], env: { HAPROXY_CFG: cfgSerf } });
    procs.push(obsSerf);
    const obsKodama = await startKodama('obs-kodama', {
      tags: { role: 'lb' },
      join: seed,
      args: ['-event-handler', `member-join=sh -c 'echo $$ >> ${hungPids}; exec sleep 100000'`, '-event-handler', spec, '-log-level=debug'],
      env: { HAPROXY_CFG: cfgKodama },
    });
    procs.push(obsKodama);
    for (const [name, role] of [
      ['w2', 'web'],
      ['w3', 'web'],
      ['db1', 'db'],
    ] as const) {
      procs.push(await startSerf(name, { tags: { role }, join: seed }));
    }
    const w2 = procs.find((p) => p.name === 'w2')!;
    const w3 = procs.find((p) => p.name === 'w3')!;

    const want3 = ['    server w1 127.0.0.1:8080 check', '    server w2 127.0.0.1:8080 check', '    server w3 127.0.0.1:8080 check'];
    for (const cfg of [cfgSerf, cfgKodama]) {
      await waitFor(`${cfg} lists w1..w3`, 30_000, () => (servers(readFileSync(cfg, 'utf8')).join('|') === want3.join('|') ? true : undefined), context);
    }
    assert.equal(readFileSync(cfgKodama, 'utf8'), readFileSync(cfgSerf, 'utf8'), 'same file after the joins');

    // w2 leaves gracefully, w3 dies
    const left = await runSerf(['leave', '-rpc-addr', w2.rpcAddr]);
    assert.equal(left.code, 0, left.stderr);
    w3.signal('SIGKILL');
    const want1 = ['    server w1 127.0.0.1:8080 check'];
    for (const cfg of [cfgSerf, cfgKodama]) {
      await waitFor(`${cfg} lists only w1`, 45_000, () => (servers(readFileSync(cfg, 'utf8')).join('|') === want1.join('|') ? true : undefined), context);
    }
    const final = readFileSync(cfgKodama, 'utf8');
    assert.equal(final, readFileSync(cfgSerf, 'utf8'), 'same file after leave and failure');
    assert.equal(final, `${BASE_CFG}${want1[0]}\n`);
    execFileSync('haproxy', ['-c', '-q', '-f', cfgKodama]); // throws if invalid
    assert.ok(!existsSync(`${cfgKodama}.new`), 'every run completed its rename');
    assert.match(obsKodama.output(), /member-(leave|failed) handled by obs-kodama/, 'handler output reached the debug log');
    assert.ok(existsSync(hungPids), 'the hung handler did run (and still sleeps)');
  } finally {
    await stopAll();
    // the agents are gone, but each handler runs in a process group of its own: the hung ones are ours to clean up
    if (existsSync(hungPids)) {
      for (const pid of readFileSync(hungPids, 'utf8').split('\n').filter(Boolean)) {
        // $$ is the inner shell, exec'd into sleep; its parent shell exits once it dies
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
