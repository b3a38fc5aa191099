// The HAProxy driver's text work: the rendered config (checked by HAProxy itself), and the
// parsers of runtime API replies, fed with replies captured from HAProxy 2.6.12.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HaproxyError } from '../../src/balancer/haproxy/errors.ts';
import { parseShowProc } from '../../src/balancer/haproxy/master.ts';
import { renderConfig } from '../../src/balancer/haproxy/render.ts';
import { parseServersState, parseStatCsv } from '../../src/balancer/haproxy/runtime.ts';
import { SlotTable } from '../../src/balancer/haproxy/slots.ts';
import { haproxyComplaints, validateConfig } from '../../src/balancer/haproxy/validate.ts';

const HAPROXY = '/usr/sbin/haproxy';

test('rendered config: one server line per slot (ready, drain at weight 0, free disabled) and HAProxy accepts it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-haproxy-render-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const web = new SlotTable(3);
  web.slots[0]!.backend = { id: 'n1', host: '10.0.0.1', port: 8080, weight: 100, state: 'ready' };
  web.slots[1]!.backend = { id: 'n2', host: '10.0.0.2', port: 8081, weight: 30, state: 'drain' };
  const db = new SlotTable(1);
  db.slots[0]!.backend = { id: 'n3', host: '::1', port: 5432, weight: 1, state: 'ready' };
  const text = renderConfig({
    adminSocket: join(dir, 'admin.sock'),
    pidFile: join(dir, 'haproxy.pid'),
    services: [
      { frontend: { service: 'web', mode: 'http', bind: { host: '127.0.0.1', port: 8000 } }, slots: web.slots },
      { frontend: { service: 'db', mode: 'tcp', bind: { host: '127.0.0.1', port: 8001 } }, slots: db.slots },
    ],
  });
  assert.match(text, /stats socket \S+admin\.sock mode 600 level admin/);
  assert.match(text, /\n {4}master-worker\n/);
  assert.match(text, /\n {4}retries 3\n {4}option redispatch 1\n/);
  assert.match(text, /\n {4}server slot0 10\.0\.0\.1:8080 weight 100 /);
  assert.match(text, /\n {4}server slot1 10\.0\.0\.2:8081 weight 0 .*draining \(weight 30\)/);
  assert.match(text, /\n {4}server slot2 127\.0\.0\.1:1 weight 1 disabled/);
  assert.match(text, /\n {4}server slot0 ipv6@::1:5432 weight 1 /);
  assert.match(text, /backend be_web\n {4}mode http\n {4}balance roundrobin\n {4}retry-on conn-failure empty-response\n/);
  assert.match(text, /backend be_db\n {4}mode tcp\n {4}balance roundrobin\n {4}server/, 'no L7 retries in tcp mode');
  const path = join(dir, 'haproxy.cfg');
  await writeFile(path, text);
  await validateConfig(HAPROXY, path);
  // And the check is real: a broken line is refused with HAProxy's words.
  await writeFile(path, `${text}\nbackend be_x\n    server s1 10.0.0.1:notaport\n`);
  await assert.rejects(validateConfig(HAPROXY, path), (e: unknown) => e instanceof HaproxyError && e.code === 'ERR_HAPROXY_CONFIG' && /notaport|port/i.test(e.message));
  assert.ok(execFileSync(HAPROXY, ['-v']).toString().includes('2.6'));
});

test('haproxyComplaints keeps the ALERT lines without their prefix', () => {
  const out = '[NOTICE]   (1) : Reloading HAProxy\n[ALERT]    (3860) : Binding [h.cfg:24] for frontend fe_bad: cannot bind socket\n[WARNING]  (3860) : Loading failure!\n';
  assert.equal(haproxyComplaints(out), 'Binding [h.cfg:24] for frontend fe_bad: cannot bind socket');
  assert.equal(haproxyComplaints('[WARNING]  (1) : something\n'), 'something');
});

test('parseShowProc reads the master reload/failed counts and the workers (2.6 format)', () => {
  const text = [
    '#<PID>          <type>          <reloads>       <uptime>        <version>      ',
    '3860            master          1 [failed: 1]   0d00h00m06s     2.6.12-1+deb12u4',
    '# workers',
    '3863            worker          1               0d00h00m06s     2.6.12-1+deb12u4',
    '4045            worker          0               0d00h00m01s     2.6.12-1+deb12u4',
    '# programs',
    '',
  ].join('\n');
  assert.deepEqual(parseShowProc(text), {
    masterPid: 3860,
    reloads: 1,
    failed: 1,
    workers: [
      { pid: 3863, reloads: 1 },
      { pid: 4045, reloads: 0 },
    ],
  });
  assert.equal(parseShowProc('Unknown command.\n'), undefined);
});

test('parseStatCsv and parseServersState map HAProxy replies to slots', () => {
  const csv = [
    '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo',
    'be_web,slot0,0,0,2,3,,417,0,0,,0,,0,0,0,0,no check,50,1,0,,,0,,,1,3,1,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:9999,,http,',
    'be_web,slot1,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,100,1,0,,,4,,,1,3,2,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:1,,http,',
    '',
  ].join('\n');
  const rows = parseStatCsv(csv);
  assert.deepEqual(
    rows.map((r) => [r.server, r.scur, r.stot, r.status, r.weight, r.addr]),
    [
      ['slot0', 2, 417, 'no check', 50, '127.0.0.1:9999'],
      ['slot1', 0, 0, 'MAINT', 100, '127.0.0.1:1'],
    ],
  );
  assert.throws(() => parseStatCsv('No such backend.\n'), (e: unknown) => e instanceof HaproxyError && e.code === 'ERR_HAPROXY_RUNTIME');

  const state = [
    '1',
    '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port',
    '3 be_web 1 slot0 127.0.0.1 2 12 100 100 1 1 0 0 8 0 0 0 - 9999 - 0 0 - - 0',
    '3 be_web 2 slot1 127.0.0.1 0 5 100 100 1 1 0 0 8 0 0 0 - 1 - 0 0 - - 0',
    '',
  ].join('\n');
  assert.deepEqual(parseServersState(state), [
    { backend: 'be_web', server: 'slot0', addr: '127.0.0.1', port: 9999, opState: 2, adminState: 12, userWeight: 100 },
    { backend: 'be_web', server: 'slot1', addr: '127.0.0.1', port: 1, opState: 0, adminState: 5, userWeight: 100 },
  ]);
});
