// The agent config of services from local containers: the `containers` section, the
// -containers-socket flag and KODAMA_CONTAINERS_SOCKET, their precedence (flags > env > files),
// errors that name the key, and that `kodama agent` hands it to the agent (and refuses bad specs
// an embedder builds by hand).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENV_VARS, decodeConfigJson } from '../../src/agent/config.ts';
import { configError, configFiles } from './config-helpers.ts';
import { agentOptions, readAgentConfig } from '../../src/cli/agent.ts';
import { createAgent } from '../../src/index.ts';

const { file } = configFiles('kodama-config-containers-');

test('containers section from a file reaches the agent options; none anywhere: none', () => {
  const f = file('c.json', { node_name: 'n', containers: { socket: '/run/podman/podman.sock', poll: '2s' } });
  const { config } = readAgentConfig(['-config-file', f], {});
  assert.deepEqual(config.containers, { socket: '/run/podman/podman.sock', pollMs: 2000 });
  assert.deepEqual(agentOptions(config, () => {}).containers, { socket: '/run/podman/podman.sock', pollMs: 2000 });
  const plain = readAgentConfig(['-node', 'n'], {}).config;
  assert.equal(plain.containers, undefined);
  assert.equal('containers' in agentOptions(plain, () => {}), false);
});

test('-containers-socket and KODAMA_CONTAINERS_SOCKET: alone they turn it on; over a file they replace the socket only; flags beat env beat files', () => {
  assert.deepEqual(readAgentConfig(['-containers-socket', '/var/run/docker.sock'], {}).config.containers, { socket: '/var/run/docker.sock', pollMs: 1000 });
  assert.deepEqual(readAgentConfig([], { KODAMA_CONTAINERS_SOCKET: ' /env.sock\n' }).config.containers, { socket: '/env.sock', pollMs: 1000 });
  const f = file('poll.json', { containers: { socket: '/file.sock', poll: '300ms' } });
  assert.deepEqual(readAgentConfig(['-config-file', f], { KODAMA_CONTAINERS_SOCKET: '/env.sock' }).config.containers, { socket: '/env.sock', pollMs: 300 });
  assert.deepEqual(readAgentConfig(['-config-file', f, '-containers-socket=/flag.sock'], { KODAMA_CONTAINERS_SOCKET: '/env.sock' }).config.containers, { socket: '/flag.sock', pollMs: 300 });
  assert.ok(ENV_VARS.includes('KODAMA_CONTAINERS_SOCKET'), 'listed in --help');
});

test('bad containers config: the error names the file, the key and what is expected', () => {
  assert.throws(() => decodeConfigJson(JSON.stringify({ containers: { socket: 7 } }), 'a.json'), configError(/^Error decoding 'a.json': containers: 'socket' expected the path of the engine's API socket, such as "\/run\/podman\/podman.sock"/));
  assert.throws(() => decodeConfigJson(JSON.stringify({ containers: { socket: '/s', pol: '1s' } }), 'a.json'), configError(/containers: unknown key\(s\) 'pol' \(did you mean 'poll'\?\)/));
  assert.throws(() => decodeConfigJson(JSON.stringify({ container: { socket: '/s' } }), 'a.json'), configError(/invalid keys: container \(did you mean containers\?\)/));
  assert.throws(() => readAgentConfig(['-containers-socket', ''], {}), (e: unknown) => e instanceof Error && /socket|containers/.test(e.message));
  // An embedder's hand-built spec is checked at create().
  assert.throws(() => createAgent({ nodeName: 'x', containers: { socket: ' ', pollMs: 1000 } }), configError(/containers: socket must not be empty/));
  assert.throws(() => createAgent({ nodeName: 'x', containers: { socket: '/s', pollMs: 5 } }), configError(/containers: poll must be at least 100 ms/));
});
