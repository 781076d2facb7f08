/**
 * The kv on Redis, for several Gatehouse nodes sharing limits, locks and messages. Its parts,
 * mirroring memory.ts operation by operation: redis-connection.ts (client, timeouts, errors),
 * redis-scripts.ts (the Lua scripts), redis-values.ts (values and counters), redis-limits.ts
 * (sliding window, backoff, budgets), redis-pubsub.ts (channels and the subscriber connection).
 */
import { DependencyUnavailableError } from '../unavailable.ts';
import { reportToConsole, type KvErrorReporter } from './args.ts';
import { CONNECTION_CONTEXT, connectRedis, createCall, quitQuietly, redactUrl } from './redis-connection.ts';
import { redisLimitOps } from './redis-limits.ts';
import { createRedisPubSub } from './redis-pubsub.ts';
import { redisValueOps } from './redis-values.ts';
import type { Kv } from './types.ts';

export interface RedisKvOptions {
  /** Prepended to every key and channel, so several deployments can share one Redis. Default `gh:`. */
  keyPrefix?: string;
  /**
   * Clock for hitSlidingWindow when no `now` is passed. The window index comes from this
   * clock (nodes should be NTP-synced); TTLs always run on Redis's own clock.
   */
  now?: () => number;
  /**
   * Receives subscriber handler errors (default: console.error) and connection errors
   * (default: dropped, since every call made meanwhile rejects with them anyway).
   */
  onError?: KvErrorReporter;
}

/**
 * Creates the kv on Redis, for several Gatehouse nodes sharing limits, locks and messages.
 * Rejects within about two seconds when Redis is unreachable. Every call rejects (rather
 * than waits) while the connection is down; the client reconnects in the background.
 */
export async function createRedisKv(url: string, options: RedisKvOptions = {}): Promise<Kv> {
  const prefix = options.keyPrefix ?? 'gh:';
  const clock = options.now ?? Date.now;
  const report: KvErrorReporter =
    options.onError ??
    ((error, context) => {
      if (context !== CONNECTION_CONTEXT) reportToConsole(error, context);
    });
  const where = redactUrl(url);
  const client = await connectRedis(url, where, report);

  let closed = false;
  const ensureOpen = (): void => {
    if (closed) throw new DependencyUnavailableError('kv', 'kv: Redis store is closed');
  };
  const call = createCall(where, ensureOpen);
  const pubsub = createRedisPubSub({ client, prefix, report, call, ensureOpen, isClosed: () => closed });

  return {
    kind: 'redis',
    ...redisValueOps(client, prefix, call),
    ...redisLimitOps(client, prefix, clock, call),
    publish: pubsub.publish,
    subscribe: pubsub.subscribe,
    subscriptionsLive: pubsub.subscriptionsLive,
    onSubscriptionsLive: pubsub.onSubscriptionsLive,

    async ping() {
      await call('ping', () => client.ping());
    },

    async close() {
      if (closed) return;
      closed = true;
      const sub = await pubsub.detach();
      await Promise.all([quitQuietly(client), sub === undefined ? undefined : quitQuietly(sub)]);
    },
  };
}
