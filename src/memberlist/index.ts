// Public surface of the membership core.
export * from './api.ts';
export * from './queue.ts';
export { lanConfig, wanConfig, localConfig, PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX } from './config.ts';
export type { MemberlistConfig } from './config.ts';
export { Memberlist, MAX_OPEN_STREAMS } from './memberlist.ts';
export { MemberlistError } from './errors.ts';
export type { MemberlistErrorCode } from './errors.ts';
export { suspicionTimeoutMs, remainingSuspicionMs, suspicionConfirmationsK } from './suspicion.ts';
