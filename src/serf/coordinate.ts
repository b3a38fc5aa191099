// Network coordinates (Vivaldi with height, adjustment and gravity), as Serf keeps them: every
// direct probe ack carries the prober's peer's coordinate (ack payload `01 || msgpack`, 5.12),
// the round trip measured by the driver's clock moves our own coordinate, and the peer's is kept
// for `get-coordinate` / `rtt`. Pure: the round trip comes in; the little randomness the model
// needs (a direction when two coordinates coincide) is a stream of its own, seeded from the node's
// name, so that coordinates draw nothing from Serf's random stream (seeded simulations replay).
//
// The model and its constants are Serf's (coordinate.DefaultConfig): 8 dimensions, error starts
// (and is capped) at 1.5, CE = CC = 0.25, an adjustment window of 20 samples, height ≥ 10 µs, a
// median filter of 3 samples per peer, gravity ρ = 150 s. Coordinates are in seconds.

/** What the model draws: uniform [0, 1). */
export interface Uniform {
  float(): number;
}

/** A small PRNG (xorshift32) seeded from a string: the direction draws of one node's model. */
export function seededUniform(seed: string): Uniform {
  let x = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) x = Math.imul(x ^ seed.charCodeAt(i), 0x01000193) >>> 0;
  if (x === 0) x = 1;
  return {
    float: () => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x / 0x1_0000_0000;
    },
  };
}
import { F64, asFloat, decodeMsgpack, encodeGossip } from '../wire/msgpack.ts';
import type { MsgValue } from '../wire/msgpack.ts';

export const DIMENSIONS = 8;
const ERROR_MAX = 1.5;
const CE = 0.25;
const CC = 0.25;
const ADJUSTMENT_WINDOW = 20;
const HEIGHT_MIN = 10e-6;
const LATENCY_FILTER = 3;
const GRAVITY_RHO = 150;
const ZERO = 1e-6;
/** Round trips above this are not measurements (Serf refuses them too). */
const MAX_RTT_S = 10;
/** The ping delegate's payload version byte. */
export const PING_VERSION = 1;

export interface Coordinate {
  vec: number[];
  error: number;
  adjustment: number;
  height: number;
}

export function newCoordinate(): Coordinate {
  return { vec: new Array<number>(DIMENSIONS).fill(0), error: ERROR_MAX, adjustment: 0, height: HEIGHT_MIN };
}

function cloneCoordinate(c: Coordinate): Coordinate {
  return { vec: c.vec.slice(), error: c.error, adjustment: c.adjustment, height: c.height };
}

export function coordinateIsValid(c: Coordinate): boolean {
  return c.vec.every(Number.isFinite) && Number.isFinite(c.error) && Number.isFinite(c.adjustment) && Number.isFinite(c.height);
}

/** Euclidean part plus both heights, seconds (no adjustment). */
function rawDistance(a: Coordinate, b: Coordinate): number {
  let sum = 0;
  for (let i = 0; i < a.vec.length; i++) {
    const d = a.vec[i]! - (b.vec[i] ?? 0);
    sum += d * d;
  }
  return Math.sqrt(sum) + a.height + b.height;
}

/** Estimated round trip between two coordinates, seconds: adjustments count when the sum stays positive. */
export function distanceSeconds(a: Coordinate, b: Coordinate): number {
  const raw = rawDistance(a, b);
  const adjusted = raw + a.adjustment + b.adjustment;
  return adjusted > 0 ? adjusted : raw;
}

/** As `serf rtt` prints it: whole nanoseconds, shown in ms. */
export function distanceMs(a: Coordinate, b: Coordinate): number {
  return Math.trunc(distanceSeconds(a, b) * 1e9) / 1e6;
}

/** Move `c` by `force` along the unit vector from `other` to `c` (random when they coincide). */
function applyForce(c: Coordinate, force: number, other: Coordinate, random: Uniform): Coordinate {
  const out = cloneCoordinate(c);
  const diff = c.vec.map((x, i) => x - (other.vec[i] ?? 0));
  let mag = Math.hypot(...diff);
  let unit: number[];
  if (mag > ZERO) {
    unit = diff.map((x) => x / mag);
  } else {
    // Same place: push in a random direction, and leave the heights alone (mag counts as 0).
    mag = 0;
    const r = diff.map(() => random.float() - 0.5);
    const rm = Math.hypot(...r);
    unit = rm > ZERO ? r.map((x) => x / rm) : diff.map((_, i) => (i === 0 ? 1 : 0));
  }
  for (let i = 0; i < out.vec.length; i++) out.vec[i] = out.vec[i]! + unit[i]! * force;
  if (mag > ZERO) out.height = Math.max(HEIGHT_MIN, ((out.height + other.height) * force) / mag + out.height);
  return out;
}

export function coordinatesCompatible(a: Coordinate, b: Coordinate): boolean {
  return a.vec.length === b.vec.length;
}

/** Our coordinate and what moves it; one per Serf instance. */
export class CoordinateClient {
  private coord = newCoordinate();
  private readonly origin = newCoordinate();
  private readonly adjustments = new Float64Array(ADJUSTMENT_WINDOW);
  private adjustmentIndex = 0;
  private readonly samples = new Map<string, number[]>();
  /** Times the coordinate went invalid (NaN, ∞) and started over: `stats` coordinate_resets. */
  resets = 0;
  private payload: Uint8Array | undefined;

  constructor(private readonly random: Uniform) {}

  get(): Coordinate {
    return cloneCoordinate(this.coord);
  }

  /**
   * A round trip to `node`, whose coordinate is `other`: move ours. Returns why it was refused
   * (an incompatible or invalid coordinate, a round trip out of range), or undefined.
   */
  update(node: string, other: Coordinate, rttSeconds: number): string | undefined {
    if (!coordinatesCompatible(this.coord, other)) return 'dimensions are not compatible';
    if (!coordinateIsValid(other)) return 'coordinate is invalid';
    if (!(rttSeconds >= 0 && rttSeconds <= MAX_RTT_S)) return `round trip ${rttSeconds} s is not within 0…${MAX_RTT_S} s`;
    const rtt = this.latencyFilter(node, rttSeconds);
    this.vivaldi(other, rtt);
    this.adjust(other, rtt);
    this.gravity();
    if (!coordinateIsValid(this.coord)) {
      this.resets++;
      this.coord = newCoordinate();
    }
    this.payload = undefined;
    return undefined;
  }

  forget(node: string): void {
    this.samples.delete(node);
  }

  /** `01 || msgpack(coordinate)`, cached until the coordinate moves. */
  ackPayload(): Uint8Array {
    this.payload ??= encodePingPayload(this.coord);
    return this.payload;
  }

  /** Median of the last LATENCY_FILTER round trips to `node`. */
  private latencyFilter(node: string, rtt: number): number {
    let s = this.samples.get(node);
    if (s === undefined) this.samples.set(node, (s = []));
    s.push(rtt);
    if (s.length > LATENCY_FILTER) s.shift();
    const sorted = [...s].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  }

  private vivaldi(other: Coordinate, rtt: number): void {
    const dist = distanceSeconds(this.coord, other);
    const r = Math.max(rtt, ZERO);
    const wrongness = Math.abs(dist - r) / r;
    const weight = this.coord.error / Math.max(this.coord.error + other.error, ZERO);
    this.coord.error = Math.min(ERROR_MAX, CE * weight * wrongness + this.coord.error * (1 - CE * weight));
    this.coord = applyForce(this.coord, CC * weight * (r - dist), other, this.random);
  }

  private adjust(other: Coordinate, rtt: number): void {
    this.adjustments[this.adjustmentIndex] = rtt - rawDistance(this.coord, other);
    this.adjustmentIndex = (this.adjustmentIndex + 1) % ADJUSTMENT_WINDOW;
    let sum = 0;
    for (const x of this.adjustments) sum += x;
    this.coord.adjustment = sum / (2 * ADJUSTMENT_WINDOW);
  }

  private gravity(): void {
    const d = distanceSeconds(this.origin, this.coord);
    this.coord = applyForce(this.coord, -((d / GRAVITY_RHO) ** 2), this.origin, this.random);
  }
}

/** Serf's struct as msgpack (field names as Go encodes them; every number a float64). */
export function coordinateToMsg(c: Coordinate): MsgValue {
  return { Adjustment: new F64(c.adjustment), Error: new F64(c.error), Height: new F64(c.height), Vec: c.vec.map((x) => new F64(x)) };
}

/** A coordinate from msgpack; undefined when it is not one. */
export function coordinateFromMsg(v: MsgValue): Coordinate | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array || v instanceof F64) return undefined;
  const vec = v['Vec'];
  if (!Array.isArray(vec) || vec.length === 0 || vec.length > 64) return undefined;
  try {
    return { vec: vec.map((x) => asFloat(x)), error: asFloat(v['Error']), adjustment: asFloat(v['Adjustment']), height: asFloat(v['Height']) };
  } catch {
    return undefined; // a field of another type
  }
}

const PAYLOAD_DECODE = { strings: 'bytes', maxDepth: 4, maxItems: 64, maxBytes: 64 } as const;

export function encodePingPayload(c: Coordinate): Uint8Array {
  const body = encodeGossip(coordinateToMsg(c));
  const out = new Uint8Array(body.length + 1);
  out[0] = PING_VERSION;
  out.set(body, 1);
  return out;
}

/** The coordinate in an ack's payload; a string says why there is none (empty: no payload at all). */
export function decodePingPayload(p: Uint8Array | null): Coordinate | string {
  if (p === null || p.length === 0) return '';
  if (p[0] !== PING_VERSION) return `unsupported ping version ${p[0]}`;
  let v: MsgValue;
  try {
    v = decodeMsgpack(p.subarray(1), PAYLOAD_DECODE);
  } catch (e) {
    return `malformed coordinate: ${(e as Error).message}`;
  }
  return coordinateFromMsg(v) ?? 'malformed coordinate';
}
