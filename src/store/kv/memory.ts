/**
 * The one-node kv: everything lives in this process. Its parts, mirroring redis.ts operation by
 * operation: memory-state.ts (entries, expiry, sweep), memory-values.ts (values and counters),
 * memory-limits.ts (sliding window, backoff, budgets), memory-pubsub.ts (channels).
 */
import { reportToConsole, type KvErrorReporter } from './args.ts';
import { memoryLimitOps } from './memory-limits.ts';
import { createMemoryPubSub } from './memory-pubsub.ts';
import { createMemoryState } from './memory-state.ts';
import { memoryValueOps } from './memory-values.ts';
import type { Kv } from './types.ts';

export interface MemoryKvOptions {
  /** Clock for TTLs and for hitSlidingWindow when no `now` is passed. */
  now?: () => number;
  /** How often expired keys are dropped; lookups ignore them in between. Default 30 s. */
  sweepIntervalMs?: number;
  /** Receives errors thrown by subscriber handlers. Default: console.error. */
  onError?: KvErrorReporter;
}

/**
 * Creates the one-node kv: everything lives in this process, so it is only correct when a
 * single Gatehouse node serves the traffic. Call close() to stop its sweep timer.
 */
export function createMemoryKv(options: MemoryKvOptions = {}): Kv {
  const state = createMemoryState(options.now ?? Date.now, options.sweepIntervalMs ?? 30_000);
  const pubsub = createMemoryPubSub(state, options.onError ?? reportToConsole);
  return {
    kind: 'memory',
    ...memoryValueOps(state),
    ...memoryLimitOps(state),
    publish: pubsub.publish,
    subscribe: pubsub.subscribe,
    subscriptionsLive: pubsub.subscriptionsLive,
    onSubscriptionsLive: pubsub.onSubscriptionsLive,

    async ping() {
      state.ensureOpen();
    },

    async close() {
      state.close();
      pubsub.clear();
    },
  };
}
