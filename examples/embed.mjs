// Embedding kodama: two agents in one process form a cluster, exchange a user event and answer
// a query, then leave. Run it: `node examples/embed.mjs` (no serf needed; `kodama` resolves to
// the package's build, dist/index.js, through package.json `exports`). A real `serf agent` could join the same
// cluster: the wire protocol is Serf's. docs/embedding.md shows the same in TypeScript.
import { setTimeout as sleep } from 'node:timers/promises';
import { TextDecoder, TextEncoder } from 'node:util';
import { createAgent } from 'kodama';

const text = (b) => new TextDecoder().decode(b);

function agent(name, role) {
  return createAgent({
    nodeName: name,
    bind: '127.0.0.1:0', // port 0: the OS picks a free port
    rpcAddr: null, // no RPC port: we drive it in-process
    profile: 'local',
    tags: { role },
    logLevel: 'WARN',
  });
}

const web = agent('web-1', 'web');
const db = agent('db-1', 'db');

// Typed events: member-join/leave/failed/update/reap, member (all of those), user, query.
web.on('member-join', (e) => console.log(`web-1 saw join: ${e.members.map((m) => `${m.name} (${m.tags['role']})`).join(', ')}`));
db.on('user', (e) => console.log(`db-1 got user event '${e.name}': ${text(e.payload)}`));
db.on('query', (q) => {
  if (q.name === 'load') q.respond(new TextEncoder().encode('0.42'));
});

await web.start();
await db.start();
const joined = await db.join([`127.0.0.1:${web.bindAddress.port}`]);
console.log(`db-1 joined ${joined.num} node(s)`);

// Wait (bounded) until both see each other alive.
for (let i = 0; i < 200 && web.members().filter((m) => m.status === 'alive').length < 2; i++) await sleep(25);
console.log(`members: ${web.members().map((m) => `${m.name}=${m.status}`).sort().join(' ')}`);

web.userEvent('deploy', 'v2.0.1', false);

const result = await web.query({ name: 'load', payload: new Uint8Array(0), filterTags: { role: 'db' }, timeoutMs: 2000 });
for (const [from, payload] of result.responses) console.log(`query 'load' answered by ${from}: ${text(payload)}`);

await db.leave(); // peers record db-1 as left, not failed
await db.stop();
await web.stop();
console.log('done');
