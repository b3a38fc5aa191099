// The simulated network passes the same compliance suite as the real UDP/TCP transport, on a
// fault-free network in virtual time (settle = advance the virtual clock).
import { transportCompliance, type ComplianceEnv } from './compliance.ts';
import { VirtualClock } from '../../src/sim/clock.ts';
import { SeededRandom, seedFromEnv } from '../../src/sim/random.ts';
import { SimNetwork, type SimTransport } from '../../src/sim/network.ts';

transportCompliance('sim', async (): Promise<ComplianceEnv> => {
  const clock = new VirtualClock();
  const network = new SimNetwork(clock, new SeededRandom(seedFromEnv(1)), { latencyMinMs: 1, latencyMaxMs: 5 });
  const created: SimTransport[] = [];
  return {
    create: async (opts) => {
      const t = network.createTransport(undefined, opts?.maxStreamBytes === undefined ? {} : { maxStreamBytes: opts.maxStreamBytes });
      created.push(t);
      return t;
    },
    settle: async (ms) => {
      clock.runFor(ms);
    },
    deadAddress: () => network.deadAddress(),
    cleanup: async () => {
      for (const t of created) t.close();
      clock.runFor(1);
    },
  };
});
