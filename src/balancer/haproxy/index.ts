// HAProxy balancer driver: public surface.
export { createHaproxyBalancer } from './haproxy.ts';
export type { HaproxyBalancer, HaproxyBalancerOptions } from './haproxy.ts';
export { HaproxyError } from './errors.ts';
export type { HaproxyErrorCode } from './errors.ts';
export type { ProcInfo } from './master.ts';
