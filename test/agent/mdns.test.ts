// -discover's mDNS records (src/agent/mdns.ts) as hashicorp/mdns (serf's) writes and reads them,
// and -iface's address choice (bindFromInterface). The exchange with a real serf is
// test/netns/discover.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from 'dns-packet';
import type { Answer } from 'dns-packet';
import { announcement, handleDatagram, peersIn, queryPacket, recordsFor, serviceName } from '../../src/agent/mdns.ts';
import type { MdnsService } from '../../src/agent/mdns.ts';
import { bindFromInterface } from '../../src/agent/address.ts';

const svc: MdnsService = { cluster: 'prod', instance: 'web-1', host: 'box', ip: '10.1.2.3', port: 7946 };

test('the PTR query for the service is answered with PTR, SRV, A and TXT, as serf does', () => {
  assert.equal(serviceName('prod'), '_serf_prod._tcp.local');
  const recs = recordsFor({ name: '_serf_prod._tcp.local', type: 'PTR' }, svc);
  assert.deepEqual(recs.map((r) => r.type), ['PTR', 'SRV', 'A', 'TXT']);
  const [ptr, srv, a, txt] = recs as [Answer, Answer, Answer, Answer];
  assert.equal(ptr.type === 'PTR' ? ptr.data : undefined, 'web-1._serf_prod._tcp.local');
  assert.deepEqual(srv.type === 'SRV' ? srv.data : undefined, { priority: 10, weight: 1, port: 7946, target: 'box' });
  assert.equal(a.name, 'box');
  assert.equal(a.type === 'A' ? a.data : undefined, '10.1.2.3');
  assert.deepEqual(txt.type === 'TXT' ? txt.data : undefined, ["Serf 'prod' cluster"]);
  // names are case-insensitive, trailing dots allowed; other clusters' names get nothing
  assert.equal(recordsFor({ name: '_SERF_prod._tcp.local.', type: 'PTR' }, svc).length, 4);
  assert.deepEqual(recordsFor({ name: '_serf_other._tcp.local', type: 'PTR' }, svc), []);
  assert.deepEqual(recordsFor({ name: 'web-1._serf_prod._tcp.local', type: 'TXT' }, svc).map((r) => r.type), ['TXT']);
  assert.deepEqual(recordsFor({ name: 'box', type: 'A' }, svc).map((r) => (r.type === 'A' ? r.data : undefined)), ['10.1.2.3']);
  assert.deepEqual(recordsFor({ name: 'box', type: 'AAAA' }, svc), []);
  assert.deepEqual(recordsFor({ name: '_services._dns-sd._udp.local', type: 'PTR' }, svc).map((r) => (r.type === 'PTR' ? r.data : undefined)), ['_serf_prod._tcp.local']);
});

test('a legacy query (not from port 5353, as hashicorp/mdns asks) is answered with its id and question; a multicast one with id 0', () => {
  const q = encode({ type: 'query', id: 4242, flags: 0, questions: [{ name: '_serf_prod._tcp.local', type: 'PTR', class: 'IN' }] });
  const legacy = handleDatagram(q, svc, true);
  assert.equal(legacy.kind, 'query');
  const lr = decode(legacy.kind === 'query' ? legacy.reply! : Buffer.alloc(0));
  assert.equal(lr.type, 'response');
  assert.equal(lr.id, 4242);
  assert.equal(lr.questions?.[0]?.name, '_serf_prod._tcp.local');
  assert.equal(lr.answers?.length, 4);
  const mc = handleDatagram(q, svc, false);
  const mr = decode(mc.kind === 'query' ? mc.reply! : Buffer.alloc(0));
  assert.equal(mr.id, 0);
  assert.equal(mr.questions?.length, 0);
  // a question for someone else: no answer at all
  const other = handleDatagram(queryPacket('staging'), svc, false);
  assert.deepEqual(other, { kind: 'query', reply: undefined });
});

test('peers are read from a response: every instance with a port and an address; the announcement is one', () => {
  // serf's answer: everything in the answer section, the SRV target is the OS host name
  const serfAnswer = encode({
    type: 'response',
    id: 0,
    flags: 0x0400,
    answers: [
      { name: '_serf_prod._tcp.local', type: 'PTR', class: 'IN', ttl: 120, data: 's1._serf_prod._tcp.local' },
      { name: 's1._serf_prod._tcp.local', type: 'SRV', class: 'IN', ttl: 120, data: { priority: 10, weight: 1, port: 8000, target: 'host-a.' } },
      { name: 'host-a.', type: 'A', class: 'IN', ttl: 120, data: '10.0.0.9' },
      { name: 's1._serf_prod._tcp.local', type: 'TXT', class: 'IN', ttl: 120, data: ["Serf 'prod' cluster"] },
    ],
  });
  assert.deepEqual(peersIn(decode(serfAnswer), 'prod'), [{ instance: 's1', ip: '10.0.0.9', port: 8000 }]);
  assert.deepEqual(peersIn(decode(serfAnswer), 'staging'), [], 'another cluster name is not ours');
  const r = handleDatagram(announcement(svc), svc, false);
  assert.deepEqual(r, { kind: 'response', peers: [{ instance: 'web-1', ip: '10.1.2.3', port: 7946 }] });
  // an SRV without an address, or without a port, is no peer
  const partial = encode({ type: 'response', answers: [{ name: '_serf_prod._tcp.local', type: 'PTR', class: 'IN', ttl: 1, data: 'x._serf_prod._tcp.local' }, { name: 'x._serf_prod._tcp.local', type: 'SRV', class: 'IN', ttl: 1, data: { port: 1, target: 'nowhere' } }] });
  assert.deepEqual(peersIn(decode(partial), 'prod'), []);
});

test('garbage on the mDNS port is counted as malformed, never thrown', () => {
  for (const junk of [Buffer.alloc(0), Buffer.from([1, 2, 3]), Buffer.alloc(40, 0xff)]) {
    const r = handleDatagram(junk, svc, false);
    assert.ok(r.kind === 'malformed' || (r.kind === 'query' && r.reply === undefined) || (r.kind === 'response' && r.peers.length === 0), JSON.stringify(r));
  }
  assert.equal(handleDatagram(Buffer.from([1, 2, 3]), svc, false).kind, 'malformed');
});

test('-iface: a wildcard bind takes the interface\'s first usable address, a bind IP must be on it', () => {
  const table = {
    eth0: [
      { address: 'fe80::1', family: 'IPv6', internal: false },
      { address: '169.254.3.3', family: 'IPv4', internal: false },
      { address: '10.0.0.5', family: 'IPv4', internal: false },
    ],
    eth1: [{ address: '2001:db8::7', family: 'IPv6', internal: false }],
    lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
    empty: [],
  };
  assert.deepEqual(bindFromInterface('eth0', '0.0.0.0:7946', table), { bind: '10.0.0.5:7946', ifaceAddr: '10.0.0.5' });
  assert.deepEqual(bindFromInterface('eth1', '0.0.0.0:9000', table), { bind: '[2001:db8::7]:9000' });
  assert.deepEqual(bindFromInterface('eth0', '10.0.0.5:7000', table), { bind: '10.0.0.5:7000', ifaceAddr: '10.0.0.5' });
  assert.throws(() => bindFromInterface('eth0', '10.0.0.6:7000', table), /Interface 'eth0' has no '10\.0\.0\.6' address/);
  assert.throws(() => bindFromInterface('wlan9', '0.0.0.0:7946', table), /no interface named 'wlan9' \(have: empty, eth0, eth1, lo\)/);
  assert.throws(() => bindFromInterface('empty', '0.0.0.0:7946', table), /Interface 'empty' has no addresses/);
});
