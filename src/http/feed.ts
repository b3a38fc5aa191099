// What the API learns from the agent's events as they happen: the timeline (member changes, user
// events, service health, check transitions, routes, deploy phases), each member's last status
// change, and live messages for SSE clients (member, timeline, deploy).

import type { HttpHost } from './host.ts';
import type { Member, SerfEvent } from '../serf/serf.ts';
import { ROUTE_EVENT } from '../deploy/types.ts';
import type { DeployState } from '../deploy/types.ts';
import { STATE_OF } from '../checks/types.ts';
import { Timeline } from './timeline.ts';
import { checksOfTags, toApiMember } from './views.ts';
import type { ApiMember, StreamMessage } from './types.ts';

/** How often the local deploy runner is looked at (it has no change callback). */
export const DEPLOY_POLL_MS = 500;

const VERB: Record<SerfEvent['type'], string> = {
  'member-join': 'joined',
  'member-leave': 'left',
  'member-failed': 'failed',
  'member-update': 'updated its tags',
  'member-reap': 'was reaped',
};

function failingKey(m: Member): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of checksOfTags(m.tags)?.failing ?? []) out.set(f.name, f.state);
  return out;
}

export class ClusterFeed {
  readonly timeline = new Timeline();
  private readonly since = new Map<string, number>();
  /** Failing checks per node as last seen in its `chk` tag: cluster-wide check transitions. */
  private readonly failing = new Map<string, Map<string, string>>();
  private readonly listeners = new Set<(m: StreamMessage) => void>();
  private readonly offs: (() => void)[] = [];
  private deployTimer: NodeJS.Timeout | undefined;
  private lastDeploy: { id: string; phase: string; updatedAt: number } | undefined;

  constructor(private readonly agent: HttpHost) {
    for (const m of agent.members()) this.failing.set(m.name, failingKey(m));
    this.offs.push(
      agent.on('member', (e) => this.onMember(e)),
      agent.on('user', (e) => {
        // Route events are told as routes (decoded), once applied.
        if (e.name === ROUTE_EVENT) return;
        this.timeline.push('user', null, `user event ${e.name} (${e.payload.length} bytes)`);
      }),
      agent.on('service', (e) => this.timeline.push('service', agent.nodeName, `${agent.nodeName}: service ${e.name} is ${e.health} (was ${e.previous})`)),
      agent.on('route', (e) => {
        const w = Object.entries(e.entry.weights).map(([k, v]) => `${k} ${v}%`).join(' / ');
        this.timeline.push('route', null, `route ${e.entry.service}: ${w === '' ? 'every backend' : `${e.entry.tag} ${w}`} (by ${e.entry.by})`);
      }),
    );
    this.timeline.onEvent((e) => this.send({ event: 'timeline', data: e }));
    this.deployTimer = setInterval(() => this.pollDeploy(), DEPLOY_POLL_MS);
    this.deployTimer.unref();
  }

  /** Date.now() of the member's last status change seen here (null: before we started). */
  statusSince(name: string): number | null {
    return this.since.get(name) ?? null;
  }

  member(m: Member): ApiMember {
    // Estimated from the network coordinates; only for members that are there to reach.
    const rtt = m.status === 'alive' || m.status === 'leaving' ? this.agent.estimatedRttMs(m.name) : undefined;
    return toApiMember(m, this.statusSince(m.name), rtt === undefined ? null : Math.round(rtt * 1000) / 1000);
  }

  onMessage(fn: (m: StreamMessage) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  stop(): void {
    for (const off of this.offs) off();
    this.offs.length = 0;
    clearInterval(this.deployTimer);
    this.listeners.clear();
  }

  private send(m: StreamMessage): void {
    for (const fn of this.listeners) fn(m);
  }

  private onMember(e: SerfEvent): void {
    const now = Date.now();
    const current = new Map(this.agent.members().map((x) => [x.name, x]));
    for (const m of e.members) {
      if (e.type !== 'member-update') this.since.set(m.name, now);
      this.timeline.push(e.type, m.name, `${m.name} ${VERB[e.type]}`);
      if (e.type === 'member-reap') {
        this.failing.delete(m.name);
      } else {
        this.checkTransitions(m);
      }
      // The member as the agent holds it now (the event's copy may be older); a reaped one is gone.
      const cur = current.get(m.name) ?? m;
      this.send({ event: 'member', data: this.member(e.type === 'member-reap' ? { ...cur, status: 'left' } : cur) });
    }
  }

  /** A node's `chk` tag changed: one timeline line per check that started or stopped failing. */
  private checkTransitions(m: Member): void {
    const before = this.failing.get(m.name) ?? new Map<string, string>();
    const after = failingKey(m);
    this.failing.set(m.name, after);
    for (const [name, state] of after) {
      if (before.get(name) !== state) this.timeline.push('check', m.name, `${m.name}: check ${name} is ${state}`);
    }
    for (const name of before.keys()) {
      if (!after.has(name)) this.timeline.push('check', m.name, `${m.name}: check ${name} is ${STATE_OF[0]}`);
    }
  }

  private pollDeploy(): void {
    let cur: DeployState | undefined;
    try {
      cur = this.agent.deploys?.current();
    } catch {
      return;
    }
    if (cur === undefined) return;
    const last = this.lastDeploy;
    if (last !== undefined && last.id === cur.id && last.updatedAt === cur.updatedAt && last.phase === cur.phase) return;
    if (last === undefined || last.id !== cur.id || last.phase !== cur.phase) {
      // The first look at an old, finished deploy is not news.
      if (last !== undefined || cur.updatedAt > Date.now() - 60_000) {
        this.timeline.push('deploy', cur.coordinator, `deploy ${cur.id} (${cur.spec.service} ${cur.spec.from} → ${cur.spec.to}): ${cur.phase}${cur.reason !== undefined ? ` — ${cur.reason}` : ''}`);
      }
    }
    this.lastDeploy = { id: cur.id, phase: cur.phase, updatedAt: cur.updatedAt };
    this.send({ event: 'deploy', data: cur });
  }
}
