// Seeded, deterministic randomness for the simulator (sfc32: small, fast, passes PractRand at the
// sizes a simulation uses). Every random choice in a simulated run comes from one of these, so a
// seed replays a run exactly.
//
// fork(label) derives an independent stream from the *seed* and the label only — it does not
// consume the parent's stream — so adding a node (a new fork) never perturbs the choices that
// other nodes or the network make.

import type { Random } from '../memberlist/api.ts';
import { SimError } from './errors.ts';

/** splitmix32 step: spreads a 32-bit seed over the PRNG state (sfc32 dislikes all-zero states). */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the label's UTF-16 code units, mixed with the parent seed. */
function deriveSeed(seed: number, label: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return splitmix32(h);
}

const TWO_POW_32 = 0x1_0000_0000;

export class SeededRandom implements Random {
  /** The 32-bit seed this stream was built from (forks have derived seeds). */
  readonly seed: number;
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new SimError('ERR_SIM_RANGE', `seed must be an integer, got ${seed}`);
    this.seed = seed >>> 0;
    let s = this.seed;
    s = splitmix32(s);
    this.a = s;
    s = splitmix32(s);
    this.b = s;
    s = splitmix32(s);
    this.c = s;
    s = splitmix32(s);
    this.d = s;
    // Warm-up: the first outputs of sfc32 are correlated with the seed.
    for (let i = 0; i < 12; i++) this.next32();
  }

  /** Next raw 32-bit output (unsigned). */
  next32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  float(): number {
    return this.next32() / TWO_POW_32;
  }

  int(n: number): number {
    if (!Number.isInteger(n) || n < 1) throw new SimError('ERR_SIM_RANGE', `int(n) needs an integer n >= 1, got ${n}`);
    return Math.floor(this.float() * n);
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let v = this.next32();
      for (let j = i; j < i + 4 && j < n; j++) {
        out[j] = v & 0xff;
        v >>>= 8;
      }
    }
    return out;
  }

  /** Uniform float in [min, max). */
  range(min: number, max: number): number {
    return min + (max - min) * this.float();
  }

  /** true with probability p (p = 0 never, p = 1 always). */
  chance(p: number): boolean {
    if (!(p >= 0 && p <= 1)) throw new SimError('ERR_SIM_RANGE', `probability must be in [0, 1], got ${p}`);
    return p > 0 && this.float() < p;
  }

  /** An independent stream named `label`; depends only on this stream's seed and the label. */
  fork(label: string): SeededRandom {
    return new SeededRandom(deriveSeed(this.seed, label));
  }
}

/** The run's seed: `KODAMA_SEED` when set (decimal), else the given default. */
export function seedFromEnv(defaultSeed: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['KODAMA_SEED'];
  if (raw === undefined || raw === '') return defaultSeed >>> 0;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new SimError('ERR_SIM_RANGE', `KODAMA_SEED must be an integer, got "${raw}"`);
  return n >>> 0;
}
