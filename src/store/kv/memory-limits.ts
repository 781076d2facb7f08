/**
 * The memory kv's limiters: the sliding window, brute-force backoff and budget counters. Each
 * reads and writes with no await in between, which is what makes it atomic in the one process
 * that holds the state.
 */
import { assertInteger, assertPositiveInteger } from './args.ts';
import { backoffDecision, checkBackoffRules, parseBackoff } from './backoff.ts';
import { budgetReserve, budgetSettle, checkBudgetArgs } from './budget.ts';
import type { MemoryState } from './memory-state.ts';
import { checkSlidingWindowArgs, slidingWindowDecision, windowKeys } from './sliding-window.ts';
import type { Kv } from './types.ts';

export type LimitOps = Pick<
  Kv,
  'hitSlidingWindow' | 'releaseSlidingWindow' | 'reserveBackoff' | 'releaseBackoff' | 'reserveBudget' | 'settleBudget' | 'seedBudget' | 'readBudget'
>;

/** The limiter operations over one memory state. */
export function memoryLimitOps(state: MemoryState): LimitOps {
  const { entries, clock } = state;
  return {
    async hitSlidingWindow(key, limit, windowMs, now) {
      state.ensureOpen();
      const at = checkSlidingWindowArgs(limit, windowMs, now ?? clock());
      const { prevKey, currKey, elapsed } = windowKeys(key, windowMs, at);
      // No await between reading and counting: that is what makes this atomic in one process.
      const prev = Number(state.live(prevKey)?.value ?? '0');
      const curr = Number(state.live(currKey)?.value ?? '0');
      const result = slidingWindowDecision(prev, curr, limit, windowMs, elapsed);
      if (result.allowed) {
        // The TTL is refreshed on every counted hit, as the Redis script does.
        entries.set(currKey, { value: String(curr + 1), expiresAt: clock() + 2 * windowMs });
      }
      return result;
    },

    async releaseSlidingWindow(key, windowMs, hitAt) {
      state.ensureOpen();
      const at = checkSlidingWindowArgs(1, windowMs, hitAt);
      const entry = state.live(windowKeys(key, windowMs, at).currKey);
      if (entry !== undefined && Number(entry.value) > 0) entry.value = String(Number(entry.value) - 1);
    },

    async reserveBackoff(rules, now) {
      state.ensureOpen();
      checkBackoffRules(rules);
      const at = Math.floor(now ?? clock());
      // No await between reading and writing: atomic within the one process that holds the state.
      const result = backoffDecision(rules, rules.map((r) => parseBackoff(state.live(r.key)?.value)), at);
      if (result.allowed) {
        rules.forEach((rule, i) => entries.set(rule.key, { value: `${result.counts[i] ?? 1}:${at}`, expiresAt: clock() + rule.ttlMs }));
      }
      return result;
    },

    async releaseBackoff(key) {
      state.ensureOpen();
      const entry = state.live(key);
      if (entry === undefined) return;
      const { count, last } = parseBackoff(entry.value);
      entry.value = `${Math.max(0, count - 1)}:${last}`;
    },

    async reserveBudget(reservationId, counters) {
      state.ensureOpen();
      checkBudgetArgs(reservationId, counters);
      // No await between reading and counting: atomic within the one process that holds the state.
      return budgetReserve(reservationId, counters, counters.map((c) => state.budget(c.key)));
    },

    async settleBudget(reservationId, settlements) {
      state.ensureOpen();
      checkBudgetArgs(reservationId, settlements);
      for (const s of settlements) budgetSettle(reservationId, s.amount, state.budget(s.key));
    },

    async seedBudget(key, used, open, ttlMs) {
      state.ensureOpen();
      assertPositiveInteger('ttlMs', ttlMs);
      assertInteger('used', used);
      if (state.budget(key) !== undefined) return false;
      state.budgets.set(key, { state: { used, open: new Map(open) }, expiresAt: clock() + ttlMs });
      return true;
    },

    async readBudget(key) {
      state.ensureOpen();
      return state.budget(key)?.used ?? null;
    },
  };
}
