// The embedded proxy's public surface: the Balancer factory and its error class.
export { EmbeddedBalancer, createEmbeddedBalancer } from './embedded.ts';
export type { EmbeddedBalancerOptions } from './embedded.ts';
export { ProxyError } from './errors.ts';
export type { ProxyErrorCode } from './errors.ts';
export type { ProxyCounters } from './counters.ts';
