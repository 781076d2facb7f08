/**
 * The sliding-window limiter's arithmetic, shared by both kv adapters: memory.ts runs
 * slidingWindowDecision() itself, redis-scripts.ts mirrors it line for line in Lua.
 */
import { assertPositiveInteger } from './args.ts';
import type { SlidingWindowResult } from './types.ts';

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
 * The sliding-window decision, mirrored line for line by the Lua script in redis-scripts.ts so
 * both adapters answer identically. `prev`/`curr` are the counts of the previous and current fixed
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
