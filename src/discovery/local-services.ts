// The services this node offers (agent config `services`), as a subsystem of the agent: their
// health checks (ServiceManager) decide the `s:<name>` tags it gossips; a graceful leave first
// drains them (`,drain` for leave_drain) so balancers stop sending new work before the node goes;
// rolling actions may force a drain. Emits a 'service' event per health transition.

import { describeReload } from '../agent/host.ts';
import type { AgentHost, Subsystem } from '../agent/host.ts';
import type { Address } from '../wire/types.ts';
import { ServiceManager } from './services.ts';
import type { ServiceStatus } from './services.ts';
import type { ServiceSpec } from './types.ts';

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

export function startLocalServices(host: ServicesHost, services: readonly ServiceSpec[], leaveDrainMs: number): LocalServices {
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
  const offStats = host.addStats(() => ({
    services: Object.fromEntries(manager.status().map((sv) => [sv.name, sv.health])),
    service_checks: Object.fromEntries(Object.entries(manager.counters()).map(([k, v]) => [k, String(v)])),
  }));

  return {
    status: () => manager.status(),
    setDraining(draining) {
      if (manager.setForcedDrain(draining)) tags.set(manager.tags(), `services: cannot ${draining ? 'drain' : 'undrain'}`);
    },
    get draining() {
      return manager.forcedDraining;
    },
    run: () => manager.start(),
    reload(o) {
      const r = manager.reconfigure(o.services ?? []);
      if (r.added.length + r.removed.length + r.changed.length === 0) return undefined;
      tags.claim(manager.managedKeys());
      tags.set(manager.tags(), 'services: cannot advertise after the reload');
      return `services: ${describeReload(r)}`;
    },
    async beforeLeave() {
      // Balancers stop sending new work when they see `,drain`; in-flight requests finish while
      // we are still a member. Only then does the node leave.
      manager.drain();
      log('INFO', `agent: services draining for ${leaveDrainMs} ms before leaving`);
      await new Promise((r) => setTimeout(r, leaveDrainMs));
    },
    stop() {
      manager.stop();
      offStats();
    },
  };
}
