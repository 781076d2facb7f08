/**
 * Argument checks and the error reporter both kv adapters share (memory.ts, redis.ts), so one
 * adapter never imports the other.
 */

import type { Logger } from 'pino';

/** Where the kv adapters report errors nobody awaits (subscriber handlers, connection drops). */
export type KvErrorReporter = (error: unknown, context: string) => void;

/**
 * A node's reporter: errors nobody awaited go through its logger (which redacts secrets); a
 * connection drop is left out (readiness reports it).
 * @example createKv({ redisUrl, keyPrefix, onError: reportToLogger(logger) })
 */
export function reportToLogger(logger: Pick<Logger, 'error'>): KvErrorReporter {
  return (err, context) => {
    if (context !== 'redis connection') logger.error({ err, context }, 'kv: an error nobody awaited');
  };
}

/** Default reporter, for a kv made without a logger (tests, tools): a throwing handler is a bug worth seeing, but must not stop delivery. */
export const reportToConsole: KvErrorReporter = (error, context) => {
  console.error(`[kv] ${context}:`, error);
};

/** Throws a RangeError unless `value` is a positive safe integer (Redis PEXPIRE/INCR need integers). */
export function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`kv: ${name} must be a positive integer, got ${String(value)}`);
  }
}

/** Throws a RangeError unless `value` is a safe integer. */
export function assertInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`kv: ${name} must be an integer, got ${String(value)}`);
  }
}
