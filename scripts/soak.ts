// `npm run soak -- --minutes N [--seed S] [--nodes 10]`: a soak run on a real test network
// (test/netns/soak.ts): a mixed serf + kodama cluster behind an embedded balancer under constant
// traffic, with a seeded random schedule of faults. Prints a line per fault and one every ~30 s,
// then a summary. Exit status: 0 passed; 1 a false failure, a request failed outside every fault
// window, a fault not recovered from within the bound, a final view problem, or
// (after a warm-up) memory growth of 5 % or more; 2 this machine
// cannot make test networks (root, iproute2, iptables or nft needed) or bad arguments.

import { netnsAvailable } from '../test/netns/net.ts';
import { DEFAULT_NODES, formatSummary, randomSeed, runSoak, soakProblems } from '../test/netns/soak.ts';

const HELP = `Usage: npm run soak -- [--minutes N] [--seed S] [--nodes N] [--warmup-minutes W]
                        [--measure-after-minutes M]

A soak run on a throwaway network of Linux namespaces (needs root): node 0 a kodama
balancer (embedded proxy), web nodes kodama (HTTP-checked service) and serf (every
third node, an s:web tag), traffic through the balancer all along, and a seeded
random schedule of faults (partitions, one-way cuts, loss, SIGSTOP, kill -9 and
restart, flapping links), each followed by recovery and a quiet gap.

Options:
  --minutes N   Minutes of faults (default 3; setup and the end add ~1 min).
  --seed S      Seed of the fault schedule, an integer 0…4294967295
                (default: random, printed; the same seed replays the same faults).
  --nodes N     Cluster size, 4…30 (default ${DEFAULT_NODES}).
  --warmup-minutes W
                Traffic without faults before the start figures (RSS, CPU) are
                taken, so growth after it is what a leak looks like (default 0;
                2 for runs of 10 minutes or more). With a warm-up, RSS growth
                of 5 % or more on an agent that ran throughout fails the run.
  --measure-after-minutes M
                Faults from the start (after any warm-up), but the memory start
                figures taken M minutes into them: the JIT, the fault paths and
                the heap's first collection cycle are then behind the window,
                and RSS growth of 5 % or more inside it fails the run. A
                30-minute memory window: --minutes 45 --measure-after-minutes 15.
  --help        This text.

Exit status: 0 passed; 1 a false failure, a request failed outside every fault
window, a fault not recovered from within the bound, a final view problem, or
(after a warm-up) memory growth of 5 % or more;
2 network namespaces unavailable here, or bad arguments.
`;

function fail(msg: string): never {
  console.error(`soak: ${msg}\n\n${HELP}`);
  process.exit(2);
}

function parse(argv: string[]): { minutes: number; seed: number; nodes: number; warmupMs: number; measureAfterMs: number } {
  let minutes = 3;
  let warmup: number | undefined;
  let measureAfter = 0;
  let seed: number | undefined;
  let nodes = DEFAULT_NODES;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') {
      console.log(HELP);
      process.exit(0);
    }
    const eq = arg.indexOf('=');
    const [name, inline] = arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) fail(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--minutes': {
        const v = value();
        minutes = Number(v);
        if (!(minutes > 0 && minutes <= 1440)) fail(`--minutes must be a number > 0 and ≤ 1440, got ${v}`);
        break;
      }
      case '--seed': {
        const v = value();
        seed = Number(v);
        if (!/^\d+$/.test(v) || seed > 0xffffffff) fail(`--seed must be an integer 0…4294967295, got ${v}`);
        break;
      }
      case '--nodes': {
        const v = value();
        nodes = Number(v);
        if (!Number.isInteger(nodes) || nodes < 4 || nodes > 30) fail(`--nodes must be an integer 4…30, got ${v}`);
        break;
      }
      case '--warmup-minutes': {
        const v = value();
        warmup = Number(v);
        if (!(warmup >= 0 && warmup <= 60)) fail(`--warmup-minutes must be a number 0…60, got ${v}`);
        break;
      }
      case '--measure-after-minutes': {
        const v = value();
        measureAfter = Number(v);
        if (!(measureAfter >= 0 && measureAfter <= 1440)) fail(`--measure-after-minutes must be a number 0…1440, got ${v}`);
        break;
      }
      default:
        fail(`unknown argument ${arg}`);
    }
  }
  if (measureAfter >= minutes) fail(`--measure-after-minutes (${measureAfter}) must be less than --minutes (${minutes})`);
  // A memory window inside the faults needs no quiet warm-up before them (unless asked for).
  const warmupDefault = measureAfter > 0 ? 0 : minutes >= 10 ? 2 : 0;
  return { minutes, seed: seed ?? randomSeed(), nodes, warmupMs: (warmup ?? warmupDefault) * 60_000, measureAfterMs: measureAfter * 60_000 };
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const avail = netnsAvailable();
  if (!avail.ok) {
    console.error(`soak: cannot run here: ${avail.why ?? 'network namespaces unavailable'}`);
    process.exit(2);
  }
  console.log(`soak: seed ${o.seed}, ${o.minutes} min of faults, ${o.nodes} nodes (replay with --seed ${o.seed})`);
  let result;
  try {
    result = await runSoak({ ...o, log: (line) => console.log(line) });
  } catch (e) {
    console.error(`soak: the run itself failed (seed ${o.seed}):\n${(e as Error).message}`);
    process.exit(1);
  }
  console.log('');
  console.log(formatSummary(result));
  const problems = soakProblems(result);
  if (problems.length > 0) {
    console.log('');
    if (result.falseFailureLogs !== '') console.log(`log lines around each false failure:\n${result.falseFailureLogs}\n`);
    console.log(result.diagnosis);
    for (const p of result.recoveryProblems) console.log(`\n${p}`);
    for (const p of result.finalProblems) console.log(`\n${p}`);
    process.exit(1);
  }
  process.exit(0);
}

await main();
