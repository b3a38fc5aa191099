// `kodama agent` with a config file offering a service and running the balancer role, as an
// operator runs it: the node's own page becomes reachable through its own embedded proxy once the
// check passes; RPC `tags` and SIGHUP reloads keep s:web; SIGTERM drains before leaving.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitWithin, rpcMembers, waitFor } from '../interop/harness.ts';
import { RpcClient } from '../../src/index.ts';
import { startWebServer } from '../../src/demo/web-server.ts';
import { KODAMA_BIN, REPO, freePort, startKodama, stopAll } from '../lib/agents.ts';
import { getText } from '../lib/http.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-services-cli-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});


test('config services + balancer: page served through the proxy once healthy; tags survive RPC and SIGHUP; SIGTERM drains then leaves', { timeout: 60_000 }, async (t) => {
  const web = await startWebServer({ node: 'svc-cli' });
  t.after(() => web.close());
  const lbPort = await freePort();
  const conf = join(dir, 'agent.json');
  const config = (gen: string): string => JSON.stringify({
    tags: { role: 'web', gen },
    services: [{ name: 'web', port: web.port, checks: [{ http: '/health', interval: '200ms', rise: 1, fall: 1 }] }],
    leave_drain: '1s',
    balancer: { services: { web: { bind: `127.0.0.1:${lbPort}` } } },
  });
  writeFileSync(conf, config('1'));
  const node = await startKodama('svc-cli', { args: [`-config-file=${conf}`] });
  const selfTags = async (): Promise<Record<string, string> | undefined> => (await rpcMembers(node.rpcAddr))?.find((m) => m.name === 'svc-cli')?.tags;
  await waitFor('s:web advertised', 15_000, async () => ((await selfTags())?.['s:web'] === String(web.port) ? true : undefined), () => node.output());
  const body = await waitFor('the page through the embedded proxy', 15_000, () => getText(`http://127.0.0.1:${lbPort}/`), () => node.output());
  assert.equal(body, 'hello from svc-cli\n');

  const client = await RpcClient.connect(node.rpcAddr);
  try {
    const stats = await client.stats();
    assert.equal(stats['services']?.['web'], 'healthy');
    assert.equal(stats['balancer']?.['driver'], 'embedded');
    assert.equal(stats['balancer']?.['backends.web'], '1 ready, 0 drain');
    // RPC `tags`: the user's tags change, the service's key is not theirs to delete.
    await client.updateTags({ zone: 'z1' }, ['s:web']);
  } finally {
    client.close();
  }
  await waitFor('zone=z1', 10_000, async () => ((await selfTags())?.['zone'] === 'z1' ? true : undefined));
  assert.equal((await selfTags())?.['s:web'], String(web.port));

  writeFileSync(conf, config('2'));
  node.signal('SIGHUP');
  await waitFor('gen=2 after SIGHUP', 10_000, async () => ((await selfTags())?.['gen'] === '2' ? true : undefined), () => node.output());
  assert.equal((await selfTags())?.['s:web'], String(web.port), 'a reload keeps the service tag');

  node.signal('SIGTERM');
  assert.equal(await exitWithin(node, 20_000), 0, node.output());
  const out = node.output();
  const draining = out.indexOf('services: web is draining');
  const leaving = out.indexOf('agent: requesting graceful leave from Serf');
  assert.ok(draining >= 0 && leaving > draining, out);
  assert.match(out, /services draining for 1000 ms before leaving/);
  assert.match(out, /services: web is healthy/);
  assert.match(out, new RegExp(`Services: web \\(http ${web.port}, 1 check\\)`));
  assert.match(out, new RegExp(`Balancer: embedded: web on 127\\.0\\.0\\.1:${lbPort}`));
});

test('kodama agent -h documents services, leave_drain and balancer', async () => {
  const out = await new Promise<string>((resolve, reject) => {
    execFile(KODAMA_BIN, ['agent', '-h'], { cwd: REPO, timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  for (const key of ['"services"', '"leave_drain"', '"balancer"', '"checks"', '"rise"', 's:<name>=<port>[,tcp][,w<weight>][,drain]']) {
    assert.ok(out.includes(key), `--help lacks ${key}`);
  }
});
