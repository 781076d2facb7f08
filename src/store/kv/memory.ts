/**
 * size-exception: createMemoryKv implements the whole kv interface over shared in-process maps,
 * mirroring redis.ts operation by operation; split by concern is pending (issue 17); no measured
 * reason to keep it whole.
 */
import { backoffDecision, checkBackoffRules, parseBackoff } from './backoff.ts';
import { budgetReserve, budgetSettle, checkBudgetArgs, type BudgetState } from './budget.ts';
import type { Kv, MessageHandler, SlidingWindowResult } from './types.ts';

/** Where the kv adapters report errors nobody awaits (subscriber handlers, connection drops). */
export type KvErrorReporter = (error: unknown, context: string) => void;

export interface MemoryKvOptions {
  /** Clock for TTLs and for hitSlidingWindow when no `now` is passed. */
  now?: () => number;
  /** How often expired keys are dropped; lookups ignore them in between. Default 30 s. */
  sweepIntervalMs?: number;
  /** Receives errors thrown by subscriber handlers. Default: console.error. */
  onError?: KvErrorReporter;
}

interface Entry {
  value: string;
  expiresAt: number;
}

/** Default reporter: a throwing handler is a bug worth seeing, but must not stop delivery. */
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

/** Validates hitSlidingWindow arguments and returns the integer instant to use. */
export function checkSlidingWindowArgs(limit: number, windowMs: number, now: number): number {
  assertPositiveInteger('limit', limit);
  assertPositiveInteger('windowMs', windowMs);
  if (!Number.isFinite(now)) throw new RangeError(`kv: now must be finite, got ${String(now)}`);
  // Integer instants keep the Lua and JS arithmetic exact and therefore identical.
  return Math.floor(now);
}

/** Window index and the keys of the current and previous fixed windows. */
export function windowKeys(key: string, windowMs: number, now: number): { prevKey: string; currKey: string; elapsed: number } {
  const index = Math.floor(now / windowMs);
  return { prevKey: `${key}:${index - 1}`, currKey: `${key}:${index}`, elapsed: now - index * windowMs };
}

// Division on doubles can round a quotient up to the next integer; the correction makes it exact.
function floorDiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  if (q * b > a) q -= 1;
  else if ((q + 1) * b <= a) q += 1;
  return q;
}

function ceilDiv(a: number, b: number): number {
  const q = floorDiv(a, b);
  return q * b < a ? q + 1 : q;
}

/**
 * The sliding-window decision, mirrored line for line by the Lua script in redis.ts so both
 * adapters answer identically. `prev`/`curr` are the counts of the previous and current fixed
 * windows, `elapsed` the ms since the current window began. Everything is scaled by windowMs
 * so the comparison stays in integers: estimate*W = prev*(W - elapsed) + curr*W.
 */
export function slidingWindowDecision(
  prev: number,
  curr: number,
  limit: number,
  windowMs: number,
  elapsed: number,
): SlidingWindowResult {
  const w = windowMs;
  const scaled = prev * (w - elapsed) + curr * w;
  if (scaled + w <= limit * w) {
    return {
      allowed: true,
      limit,
      remaining: floorDiv(limit * w - w - scaled, w),
      retryAfterMs: 0,
      // The hit just counted in the current window weighs on until the next window ends.
      resetMs: 2 * w - elapsed,
    };
  }
  let retryAfterMs: number;
  if (curr + 1 > limit) {
    // The current window alone is full: wait for it to end, then until its weight (as the
    // next window's "previous") has decayed enough: curr*(1 - t/W) + 1 <= limit.
    retryAfterMs = w - elapsed + ceilDiv(w * (curr + 1 - limit), curr);
  } else {
    // Only the previous window's weight is in the way: prev*(1 - t/W) + curr + 1 <= limit.
    retryAfterMs = ceilDiv(w * (prev + curr + 1 - limit), prev) - elapsed;
  }
  return {
    allowed: false,
    limit,
    remaining: 0,
    retryAfterMs,
    // Tight: with nothing in the current window only the previous one's weight remains.
    resetMs: curr > 0 ? 2 * w - elapsed : w - elapsed,
  };
}

/**
 * Creates the one-node kv: everything lives in this process, so it is only correct when a
 * single Gatehouse node serves the traffic. Call close() to stop its sweep timer.
 */
export function createMemoryKv(options: MemoryKvOptions = {}): Kv {
  const clock = options.now ?? Date.now;
  const onError = options.onError ?? reportToConsole;
  const sweepIntervalMs = options.sweepIntervalMs ?? 30_000;
  assertPositiveInteger('sweepIntervalMs', sweepIntervalMs);

  const entries = new Map<string, Entry>();
  const channels = new Map<string, Set<MessageHandler>>();
  const budgets = new Map<string, { state: BudgetState; expiresAt: number }>();
  let closed = false;

  function budget(key: string): BudgetState | undefined {
    const entry = budgets.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= clock()) {
      budgets.delete(key);
      return undefined;
    }
    return entry.state;
  }

  const sweep = setInterval(() => {
    const now = clock();
    for (const [key, entry] of entries) {
      if (entry.expiresAt <= now) entries.delete(key);
    }
    for (const [key, entry] of budgets) {
      if (entry.expiresAt <= now) budgets.delete(key);
    }
  }, sweepIntervalMs);
  // The sweep only bounds memory; it must not keep the process alive on its own.
  sweep.unref();

  function live(key: string): Entry | undefined {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= clock()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  }

  function ensureOpen(): void {
    if (closed) throw new Error('kv: memory store is closed');
  }

  function incrSync(key: string, by: number, ttlMs: number): number {
    const entry = live(key);
    if (entry === undefined) {
      entries.set(key, { value: String(by), expiresAt: clock() + ttlMs });
      return by;
    }
    // Same rule as Redis INCRBY: only integer strings can be counters.
    if (!/^-?\d+$/.test(entry.value)) throw new Error(`kv: value at ${key} is not an integer`);
    const next = Number(entry.value) + by;
    if (!Number.isSafeInteger(next)) throw new RangeError(`kv: increment at ${key} would overflow`);
    entry.value = String(next);
    return next;
  }

  return {
    kind: 'memory',

    async incr(key, by, ttlMs) {
      ensureOpen();
      assertInteger('by', by);
      assertPositiveInteger('ttlMs', ttlMs);
      return incrSync(key, by, ttlMs);
    },

    async incrExisting(key, by) {
      ensureOpen();
      assertInteger('by', by);
      // An existing entry keeps its TTL: incrSync only uses the TTL when it creates the key.
      return live(key) === undefined ? null : incrSync(key, by, 1);
    },

    async get(key) {
      ensureOpen();
      return live(key)?.value ?? null;
    },

    async set(key, value, ttlMs) {
      ensureOpen();
      assertPositiveInteger('ttlMs', ttlMs);
      entries.set(key, { value, expiresAt: clock() + ttlMs });
    },

    async setIfAbsent(key, value, ttlMs) {
      ensureOpen();
      assertPositiveInteger('ttlMs', ttlMs);
      if (live(key) !== undefined) return false;
      entries.set(key, { value, expiresAt: clock() + ttlMs });
      return true;
    },

    async del(key) {
      ensureOpen();
      entries.delete(key);
      budgets.delete(key);
    },

    async hitSlidingWindow(key, limit, windowMs, now) {
      ensureOpen();
      const at = checkSlidingWindowArgs(limit, windowMs, now ?? clock());
      const { prevKey, currKey, elapsed } = windowKeys(key, windowMs, at);
      // No await between reading and counting: that is what makes this atomic in one process.
      const prev = Number(live(prevKey)?.value ?? '0');
      const curr = Number(live(currKey)?.value ?? '0');
      const result = slidingWindowDecision(prev, curr, limit, windowMs, elapsed);
      if (result.allowed) {
        // The TTL is refreshed on every counted hit, as the Redis script does.
        entries.set(currKey, { value: String(curr + 1), expiresAt: clock() + 2 * windowMs });
      }
      return result;
    },

    async releaseSlidingWindow(key, windowMs, hitAt) {
      ensureOpen();
      const at = checkSlidingWindowArgs(1, windowMs, hitAt);
      const entry = live(windowKeys(key, windowMs, at).currKey);
      if (entry !== undefined && Number(entry.value) > 0) entry.value = String(Number(entry.value) - 1);
    },

    async reserveBackoff(rules, now) {
      ensureOpen();
      checkBackoffRules(rules);
      const at = Math.floor(now ?? clock());
      // No await between reading and writing: atomic within the one process that holds the state.
      const result = backoffDecision(rules, rules.map((r) => parseBackoff(live(r.key)?.value)), at);
      if (result.allowed) {
        rules.forEach((rule, i) => entries.set(rule.key, { value: `${result.counts[i] ?? 1}:${at}`, expiresAt: clock() + rule.ttlMs }));
      }
      return result;
    },

    async releaseBackoff(key) {
      ensureOpen();
      const entry = live(key);
      if (entry === undefined) return;
      const { count, last } = parseBackoff(entry.value);
      entry.value = `${Math.max(0, count - 1)}:${last}`;
    },

    async reserveBudget(reservationId, counters) {
      ensureOpen();
      checkBudgetArgs(reservationId, counters);
      // No await between reading and counting: atomic within the one process that holds the state.
      return budgetReserve(reservationId, counters, counters.map((c) => budget(c.key)));
    },

    async settleBudget(reservationId, settlements) {
      ensureOpen();
      checkBudgetArgs(reservationId, settlements);
      for (const s of settlements) budgetSettle(reservationId, s.amount, budget(s.key));
    },

    async seedBudget(key, used, open, ttlMs) {
      ensureOpen();
      assertPositiveInteger('ttlMs', ttlMs);
      assertInteger('used', used);
      if (budget(key) !== undefined) return false;
      budgets.set(key, { state: { used, open: new Map(open) }, expiresAt: clock() + ttlMs });
      return true;
    },

    async readBudget(key) {
      ensureOpen();
      return budget(key)?.used ?? null;
    },

    async publish(channel, message) {
      ensureOpen();
      const handlers = channels.get(channel);
      if (handlers === undefined || handlers.size === 0) return;
      const targets = [...handlers];
      // Deliver later, like a broker would, so publishers never run subscriber code inline.
      setImmediate(() => {
        for (const handler of targets) {
          // A handler removed after the publish but before delivery no longer wants messages.
          if (!handlers.has(handler)) continue;
          try {
            handler(message);
          } catch (error) {
            onError(error, `subscriber handler on ${channel}`);
          }
        }
      });
    },

    async subscribe(channel, handler) {
      ensureOpen();
      let handlers = channels.get(channel);
      if (handlers === undefined) {
        handlers = new Set();
        channels.set(channel, handlers);
      }
      // Wrapping gives each subscription its own identity, so the same function subscribed
      // twice is delivered twice and unsubscribing one leaves the other.
      const subscription: MessageHandler = (message) => handler(message);
      handlers.add(subscription);
      const own = handlers;
      return async () => {
        own.delete(subscription);
        if (own.size === 0 && channels.get(channel) === own) channels.delete(channel);
      };
    },

    // One process: a published message always reaches its subscribers, so the state never changes.
    subscriptionsLive() {
      return !closed;
    },

    onSubscriptionsLive() {
      return () => undefined;
    },

    async ping() {
      ensureOpen();
    },

    async close() {
      closed = true;
      clearInterval(sweep);
      entries.clear();
      budgets.clear();
      // Emptying the sets also cancels deliveries already scheduled by publish().
      for (const handlers of channels.values()) handlers.clear();
      channels.clear();
    },
  };
}
