import { createMemoryKv } from './memory.ts';
import type { KvErrorReporter } from './args.ts';
import type { Kv } from './types.ts';

export type { Kv, MessageHandler, SlidingWindowResult } from './types.ts';
export { reportToLogger, type KvErrorReporter } from './args.ts';
export { createMemoryKv } from './memory.ts';

export interface KvOptions {
  /** Redis for several nodes; without it the kv lives in this process (one node only). */
  redisUrl?: string;
  now?: () => number;
  /** See RedisKvOptions.keyPrefix. Ignored by the memory kv. */
  keyPrefix?: string;
  onError?: KvErrorReporter;
}

/** Opens the kv the configuration asks for: Redis when a URL is given, memory otherwise. */
export async function createKv(options: KvOptions): Promise<Kv> {
  const { redisUrl, now, keyPrefix, onError } = options;
  if (redisUrl !== undefined && redisUrl !== '') {
    // ioredis is loaded only by a node that uses Redis (about 2 MB of heap otherwise held for nothing).
    const { createRedisKv } = await import('./redis.ts');
    return createRedisKv(redisUrl, { keyPrefix, now, onError });
  }
  return createMemoryKv({ now, onError });
}
