// The services this node offers (agent config `services`, and with `containers` the services of
// its local containers), as a subsystem of the agent: their health checks (ServiceManager)
// decide the `s:<name>` tags it gossips; a graceful leave first drains them (`,drain` for
// leave_drain) so balancers stop sending new work before the node goes; rolling actions may
// force a drain. Emits a 'service' event per health transition.
//
// Containers (src/discovery/containers/): the watcher hands over the labelled containers after
// every change; a running one becomes a service like a configured one (checked, advertised
// while healthy), a stopping one is withdrawn like a leave (`,drain`, no new work while its stop
// grace period runs), a gone one loses its tag. A configured service's name is the config's.

import { describeReload } from '../agent/host.ts';
import type { AgentHost, Subsystem } from '../agent/host.ts';
import type { Address } from '../wire/types.ts';
import { ServiceManager } from './services.ts';
import type { ServiceStatus } from './services.ts';
import type { ContainersSpec, ServiceSpec } from './types.ts';
import type { ContainerService, chooseServices } from './containers/labels.ts';
import type { ContainerSource } from './containers/source.ts';

/** What the services read of the agent beyond the AgentHost (the Agent has it). */
export interface ServicesHost extends AgentHost {
  /** Where balancers will connect: the checks probe this address. */
  readonly advertiseAddress: Address;
}

export interface LocalServices extends Subsystem {
  status(): ServiceStatus[];
  /** Force `,drain` on every advertised service (true) or clear it (false). */
  setDraining(draining: boolean): void;
  readonly draining: boolean;
}

export function startLocalServices(host: ServicesHost, services: readonly ServiceSpec[], leaveDrainMs: number, containers?: ContainersSpec): LocalServices {
  const log = (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string): void => host.logger.log(level, msg);
  const manager: ServiceManager = new ServiceManager({
    services,
    host: host.advertiseAddress.ip,
    log,
    onTransition: (e) => {
      tags.set(manager.tags(), `services: cannot advertise ${e.name}`);
      host.emit('service', e);
    },
  });
  // Before the agent runs: services without checks are healthy from the start, advertised in the
  // first alive message.
  const tags = host.ownTags(manager.managedKeys(), manager.tags());
  let configured: readonly ServiceSpec[] = services;
  let source: ContainerSource | undefined;
  let fromContainers: ContainerService[] = [];
  /** What the containers currently give, by service name (for log lines about changes). */
  let offered = new Map<string, ContainerService>();
  const shadowReported = new Set<string>();
  let leaving = false;
  /** containers/labels.ts's chooser, loaded with the watcher (a node without containers never loads it). */
  let choose: typeof chooseServices | undefined;

  // Configured services plus the chosen containers' → the manager, then the tags it owns.
  const apply = (): ReturnType<ServiceManager['reconfigure']> => {
    const { chosen, shadowed } = choose?.(fromContainers, new Set(configured.map((s) => s.name))) ?? { chosen: [], shadowed: [] };
    for (const { service, by } of shadowed) {
      const key = `${service.id}\n${by}`;
      if (shadowReported.has(key)) continue;
      shadowReported.add(key);
      log('WARN', `containers: ${service.container} offers ${service.spec.name}, already offered by ${by}: ignored while that one runs (one s:${service.spec.name} tag per node)`);
    }
    const next = new Map(chosen.map((c) => [c.spec.name, c]));
    // A withdrawn service seen running again (its stop failed, or a replacement with the same
    // spec) starts over: out first, then in, so its checks run again.
    const restart = chosen.filter((c) => c.phase === 'running' && manager.status().some((s) => s.name === c.spec.name && s.health === 'draining'));
    if (restart.length > 0) {
      manager.reconfigure([...configured, ...chosen.filter((c) => !restart.includes(c)).map((c) => c.spec)]);
    }
    const r = manager.reconfigure([...configured, ...chosen.map((c) => c.spec)]);
    tags.claim(manager.managedKeys());
    for (const c of chosen) {
      const before = offered.get(c.spec.name);
      if (before === undefined || before.id !== c.id || restart.includes(c)) {
        const check = c.spec.checks[0];
        log('INFO', `containers: ${c.container} offers ${c.spec.name} on port ${c.spec.port} (${check === undefined ? 'no check: healthy while running' : `${check.kind} check every ${check.intervalMs} ms`})`);
      }
      if (c.phase === 'stopping' && manager.withdraw(c.spec.name)) log('INFO', `containers: ${c.container} is stopping: ${c.spec.name} drains (no new work) until it is gone`);
    }
    for (const [name, c] of offered) if (!next.has(name) || next.get(name)!.id !== c.id) log('INFO', `containers: ${c.container} is gone: ${name} withdrawn`);
    offered = next;
    for (const k of shadowReported) if (!fromContainers.some((c) => k.startsWith(`${c.id}\n`))) shadowReported.delete(k);
    tags.set(manager.tags(), 'services: cannot advertise the containers\' services');
    return r;
  };

  const watch = async (spec: ContainersSpec): Promise<void> => {
    const [{ startContainerSource }, labels] = await Promise.all([import('./containers/source.ts'), import('./containers/labels.ts')]);
    if (leaving) return;
    choose = labels.chooseServices;
    log('INFO', `containers: watching the engine at ${spec.socket} (labels kodama.service, kodama.port; re-list every ${spec.pollMs} ms)`);
    source = startContainerSource({
      socket: spec.socket,
      pollMs: spec.pollMs,
      log,
      onChange: (found) => {
        fromContainers = found;
        if (leaving) return;
        try {
          apply();
        } catch (e) {
          // A tag another part of the agent owns (claim refuses it): say so, keep running.
          log('ERR', `containers: cannot apply the containers' services: ${(e as Error).message}`);
        }
      },
    });
  };

  const offStats = host.addStats(() => ({
    services: Object.fromEntries(manager.status().map((sv) => [sv.name, sv.health])),
    service_checks: Object.fromEntries(Object.entries(manager.counters()).map(([k, v]) => [k, String(v)])),
    ...(source !== undefined ? { containers: Object.fromEntries(Object.entries(source.counters()).map(([k, v]) => [k, String(v)])) } : {}),
  }));

  return {
    status: () => manager.status(),
    setDraining(draining) {
      if (manager.setForcedDrain(draining)) tags.set(manager.tags(), `services: cannot ${draining ? 'drain' : 'undrain'}`);
    },
    get draining() {
      return manager.forcedDraining;
    },
    run() {
      manager.start();
      if (containers !== undefined) {
        watch(containers).catch((e: unknown) => log('ERR', `containers: cannot start watching ${containers.socket}: ${(e as Error).message}`));
      }
    },
    reload(o) {
      configured = o.services ?? [];
      // The reload's services and the containers' are one set: tags follow both. (The
      // `containers` section itself is read only at start.)
      const r = apply();
      if (r.added.length + r.removed.length + r.changed.length === 0) return undefined;
      return `services: ${describeReload(r)}`;
    },
    async beforeLeave() {
      // No container may bring a service back while the node drains.
      leaving = true;
      source?.stop();
      // Balancers stop sending new work when they see `,drain`; in-flight requests finish while
      // we are still a member. Only then does the node leave.
      manager.drain();
      log('INFO', `agent: services draining for ${leaveDrainMs} ms before leaving`);
      await new Promise((r) => setTimeout(r, leaveDrainMs));
    },
    stop() {
      leaving = true;
      source?.stop();
      manager.stop();
      offStats();
    },
  };
}
