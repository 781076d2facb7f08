/** The Redis kv's plain values and counters: get/set, set-if-absent, delete and increments. */
import type { Redis } from 'ioredis';
import { assertInteger, assertPositiveInteger } from './args.ts';
import { runScript, type RedisCall } from './redis-connection.ts';
import { INCR_EXISTING_SCRIPT, INCR_SCRIPT } from './redis-scripts.ts';
import type { Kv } from './types.ts';

export type ValueOps = Pick<Kv, 'incr' | 'incrExisting' | 'get' | 'set' | 'setIfAbsent' | 'del'>;

/** The value operations on `client`, every key under `prefix`. */
export function redisValueOps(client: Redis, prefix: string, call: RedisCall): ValueOps {
  return {
    async incr(key, by, ttlMs) {
      assertInteger('by', by);
      assertPositiveInteger('ttlMs', ttlMs);
      const reply = await call('incr', () => runScript(client, INCR_SCRIPT, [prefix + key], [by, ttlMs]));
      if (typeof reply !== 'number') throw new Error(`kv: unexpected INCRBY reply: ${JSON.stringify(reply)}`);
      return reply;
    },

    async incrExisting(key, by) {
      assertInteger('by', by);
      const reply = await call('incrExisting', () => runScript(client, INCR_EXISTING_SCRIPT, [prefix + key], [by]));
      if (reply === null) return null;
      if (typeof reply !== 'number') throw new Error(`kv: unexpected INCRBY reply: ${JSON.stringify(reply)}`);
      return reply;
    },

    async get(key) {
      return call('get', () => client.get(prefix + key));
    },

    async set(key, value, ttlMs) {
      assertPositiveInteger('ttlMs', ttlMs);
      await call('set', () => client.set(prefix + key, value, 'PX', ttlMs));
    },

    async setIfAbsent(key, value, ttlMs) {
      assertPositiveInteger('ttlMs', ttlMs);
      const reply = await call('setIfAbsent', () => client.set(prefix + key, value, 'PX', ttlMs, 'NX'));
      return reply === 'OK';
    },

    async del(key) {
      await call('del', () => client.del(prefix + key));
    },
  };
}
