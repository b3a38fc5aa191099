// Ansible's dynamic inventory from the member list (`kodama inventory --list / --host NAME`):
// one group per role (`web`) and one per tag as `key_value` (`role_web`, `dc_east`, `color_blue`),
// hostvars with what ssh needs (ansible_host, ansible_port, ansible_user) and what kodama knows
// (status, gossip address, tags). Pure: members in, JSON-ready objects out.
//
// Tags whose values kodama rewrites as health changes (the check summary, service tags, the
// internal query filter) and the ssh_port / ssh_user tags (how to reach a host) are hostvars
// only, never groups: a group should say what a host *is*.

import type { RpcMember } from '../rpc/backend.ts';
import { bytesToIp } from '../wire/index.ts';

/** Tag keys that are state or access, not identity: no group is made of them. */
const NOT_A_GROUP = /^(?:chk|_kodama.*|s:.*|ssh_port|ssh_user)$/;

/** Group names Ansible gives a meaning of its own. */
const RESERVED_GROUPS = new Set(['all', 'ungrouped', '_meta']);

/** Where ssh reaches a member: its address, and port/user from its tags or the defaults given. */
export interface SshTarget {
  node: string;
  host: string;
  port: number | undefined;
  user: string | undefined;
  status: string;
}

export interface SshDefaults {
  /** Used where a member has no `ssh_port` tag. */
  port?: number | undefined;
  /** Used where a member has no `ssh_user` tag. */
  user?: string | undefined;
}

/** The tags that say how to reach a member's sshd (a member may run it on another port). */
export const SSH_PORT_TAG = 'ssh_port';
export const SSH_USER_TAG = 'ssh_user';

export function sshTarget(m: RpcMember, d: SshDefaults = {}): SshTarget {
  const tagPort = m.tags[SSH_PORT_TAG];
  const port = tagPort !== undefined && /^\d{1,5}$/.test(tagPort) && Number(tagPort) > 0 && Number(tagPort) < 65536 ? Number(tagPort) : d.port;
  const tagUser = m.tags[SSH_USER_TAG];
  const user = tagUser !== undefined && tagUser !== '' ? tagUser : d.user;
  return { node: m.name, host: bytesToIp(m.addr), port, user, status: m.status };
}

/** Ansible group names take letters, digits and underscores; anything else becomes `_`. */
export function groupName(s: string): string {
  return s.replace(/[^A-Za-z0-9_]/g, '_');
}

export function hostVars(m: RpcMember, d: SshDefaults = {}): Record<string, unknown> {
  const t = sshTarget(m, d);
  const ip = t.host;
  return {
    ansible_host: ip,
    ...(t.port !== undefined ? { ansible_port: t.port } : {}),
    ...(t.user !== undefined ? { ansible_user: t.user } : {}),
    kodama_status: m.status,
    kodama_addr: ip.includes(':') ? `[${ip}]:${m.port}` : `${ip}:${m.port}`,
    kodama_tags: Object.fromEntries(Object.keys(m.tags).sort().map((k) => [k, m.tags[k]])),
  };
}

/** The groups a member belongs to (sorted, deduplicated). */
export function groupsOf(m: RpcMember): string[] {
  const out = new Set<string>();
  const role = m.tags['role'];
  if (role !== undefined && role !== '') {
    const g = groupName(role);
    if (!RESERVED_GROUPS.has(g)) out.add(g);
  }
  for (const [k, v] of Object.entries(m.tags)) {
    if (NOT_A_GROUP.test(k) || v === '') continue;
    out.add(groupName(`${k}_${v}`));
  }
  return [...out].sort();
}

export interface Inventory {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
  all: { children: string[] };
  ungrouped?: { hosts: string[] };
  [group: string]: unknown;
}

/** `--list`: every group with its hosts, `all.children` naming them, hostvars in `_meta`. */
export function buildInventory(members: readonly RpcMember[], d: SshDefaults = {}): Inventory {
  const groups = new Map<string, string[]>();
  const ungrouped: string[] = [];
  const hostvars: Record<string, Record<string, unknown>> = {};
  for (const m of [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    hostvars[m.name] = hostVars(m, d);
    const gs = groupsOf(m);
    if (gs.length === 0) ungrouped.push(m.name);
    for (const g of gs) {
      const hosts = groups.get(g) ?? [];
      hosts.push(m.name);
      groups.set(g, hosts);
    }
  }
  const names = [...groups.keys()].sort();
  const inv: Inventory = { _meta: { hostvars }, all: { children: [...names, 'ungrouped'] } };
  for (const g of names) inv[g] = { hosts: groups.get(g)! };
  inv.ungrouped = { hosts: ungrouped };
  return inv;
}
