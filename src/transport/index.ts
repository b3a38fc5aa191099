// The runtime side of kodama's membership: the Transport contract, the real UDP+TCP transport,
// the real clock and randomness, and the Driver that binds a sans-I/O core to them.
export type { Clock, StreamReply, TimerHandle, Transport, TransportHandlers } from './transport.ts';
export { monotonicMs, systemRandom, systemClock } from './clock.ts';
export { Driver } from './driver.ts';
export { listenNodeTransport } from './node-transport.ts';
export type { NodeTransportOptions } from './node-transport.ts';
export { TransportError } from './errors.ts';
export type { TransportErrorCode } from './errors.ts';
