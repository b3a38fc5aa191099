// The log hook the sans-I/O Serf layer reports through; the agent decides where lines go.

export type LogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERR';

/** Ordered from most to least verbose; a line is shown when its rank ≥ the configured one. */
export const LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERR'];

/** `msg` is the text after serf's `[LEVEL] ` prefix, e.g. `serf: EventMemberJoin: a 10.0.0.1`. */
export type LogFn = (level: LogLevel, msg: string) => void;
