/**
 * The Redis kv's limiters: the sliding window, brute-force backoff and budget counters, each one
 * Lua script (redis-scripts.ts), so concurrent calls from every node are counted atomically.
 */
import type { Redis } from 'ioredis';
import { assertInteger, assertPositiveInteger } from './args.ts';
import { checkBackoffRules, type BackoffResult } from './backoff.ts';
import { checkBudgetArgs, type BudgetReserveResult } from './budget.ts';
import { runScript, toIntegers, type RedisCall } from './redis-connection.ts';
import {
  BACKOFF_RELEASE_SCRIPT,
  BACKOFF_RESERVE_SCRIPT,
  BUDGET_RESERVE_SCRIPT,
  BUDGET_SEED_SCRIPT,
  BUDGET_SETTLE_SCRIPT,
  SLIDING_WINDOW_RELEASE_SCRIPT,
  SLIDING_WINDOW_SCRIPT,
} from './redis-scripts.ts';
import { checkSlidingWindowArgs, windowKeys } from './sliding-window.ts';
import type { Kv, SlidingWindowResult } from './types.ts';

export type LimitOps = Pick<
  Kv,
  'hitSlidingWindow' | 'releaseSlidingWindow' | 'reserveBackoff' | 'releaseBackoff' | 'reserveBudget' | 'settleBudget' | 'seedBudget' | 'readBudget'
>;

/** The limiter operations on `client`, every key under `prefix`; `clock` places a hit without `now`. */
export function redisLimitOps(client: Redis, prefix: string, clock: () => number, call: RedisCall): LimitOps {
  return {
    async hitSlidingWindow(key, limit, windowMs, now): Promise<SlidingWindowResult> {
      const at = checkSlidingWindowArgs(limit, windowMs, now ?? clock());
      const { prevKey, currKey, elapsed } = windowKeys(prefix + key, windowMs, at);
      const reply = await call('hitSlidingWindow', () =>
        runScript(client, SLIDING_WINDOW_SCRIPT, [prevKey, currKey], [limit, windowMs, elapsed, 2 * windowMs]),
      );
      const [allowed, remaining, retryAfterMs, resetMs] = toIntegers(reply, 4) as [number, number, number, number];
      return { allowed: allowed === 1, limit, remaining, retryAfterMs, resetMs };
    },

    async releaseSlidingWindow(key, windowMs, hitAt) {
      const at = checkSlidingWindowArgs(1, windowMs, hitAt);
      const { currKey } = windowKeys(prefix + key, windowMs, at);
      await call('releaseSlidingWindow', () => runScript(client, SLIDING_WINDOW_RELEASE_SCRIPT, [currKey], []));
    },

    async reserveBackoff(rules, now): Promise<BackoffResult> {
      checkBackoffRules(rules);
      const at = Math.floor(now ?? clock());
      const args = [at, ...rules.flatMap((r) => [r.freeAttempts, r.baseDelayMs, r.maxDelayMs, r.lockAfter, r.lockMs, r.maxAttempts, r.ttlMs, r.floorCount ?? 0, r.floorLast ?? 0])];
      const reply = await call('reserveBackoff', () => runScript(client, BACKOFF_RESERVE_SCRIPT, rules.map((r) => prefix + r.key), args));
      const [allowed, retryAfterMs, refusedBy, ...counts] = toIntegers(reply, 3 + rules.length) as [number, number, number, ...number[]];
      return { allowed: allowed === 1, retryAfterMs, refusedBy, counts };
    },

    async releaseBackoff(key) {
      await call('releaseBackoff', () => runScript(client, BACKOFF_RELEASE_SCRIPT, [prefix + key], []));
    },

    async reserveBudget(reservationId, counters): Promise<BudgetReserveResult> {
      checkBudgetArgs(reservationId, counters);
      const args = [reservationId, ...counters.flatMap((c) => [c.amount, c.limit])];
      const reply = await call('reserveBudget', () => runScript(client, BUDGET_RESERVE_SCRIPT, counters.map((c) => prefix + c.key), args));
      if (!Array.isArray(reply) || !reply.every((v) => typeof v === 'number')) throw new Error(`kv: unexpected reply from Redis script: ${JSON.stringify(reply)}`);
      const [status, second, ...rest] = reply as number[];
      if (status === 2) return { status: 'missing', indexes: [second as number, ...rest] };
      const used = toIntegers(rest, counters.length);
      return status === 1 ? { status: 'reserved', used } : { status: 'refused', index: second as number, used };
    },

    async settleBudget(reservationId, settlements) {
      checkBudgetArgs(reservationId, settlements);
      await call('settleBudget', () => runScript(client, BUDGET_SETTLE_SCRIPT, settlements.map((s) => prefix + s.key), [reservationId, ...settlements.map((s) => s.amount)]));
    },

    async seedBudget(key, used, open, ttlMs) {
      assertPositiveInteger('ttlMs', ttlMs);
      assertInteger('used', used);
      const reply = await call('seedBudget', () => runScript(client, BUDGET_SEED_SCRIPT, [prefix + key], [ttlMs, used, ...open.flatMap(([id, amount]) => [id, amount])]));
      return reply === 1;
    },

    async readBudget(key) {
      const raw = await call('readBudget', () => client.hget(prefix + key, 'u'));
      return raw === null ? null : Number(raw);
    },
  };
}
