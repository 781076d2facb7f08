/**
 * Attempt counters with growing waits (the sign-in throttle of AUTH-5), decided here once and
 * mirrored line for line by the Lua script in redis.ts, so both adapters answer identically.
 *
 * A bucket holds `count:last`: the attempts reserved and not given back, and when the latest was
 * reserved. An attempt is reserved BEFORE the expensive check it guards (an Argon2 verification),
 * in the same atomic step that decides whether it may run, so parallel attempts cannot all read
 * "allowed" before any of them is counted. A success gives its reservation back; a failure keeps it.
 * Written by hand: no well-kept library does a multi-bucket check-and-reserve on memory and Redis.
 */

/** One bucket an attempt is counted in, and how it throttles. */
export interface BackoffRule {
  key: string;
  /** Attempts that never wait. */
  freeAttempts: number;
  /** Wait after the first attempt past the free ones; it doubles with each further attempt. */
  baseDelayMs: number;
  /** Upper bound of the doubling wait. */
  maxDelayMs: number;
  /** From this many attempts on, each attempt waits `lockMs` after the previous one (0: never). */
  lockAfter: number;
  lockMs: number;
  /** From this many attempts on, nothing is allowed until the bucket is cleared or expires (0: never). */
  maxAttempts: number;
  /** How long the bucket lives after its latest reservation. */
  ttlMs: number;
  /**
   * A state recorded elsewhere (the database) that the bucket is never below: when the stored count
   * is lower (the counter store lost it), the decision uses `floorCount` attempts, the latest at
   * `floorLast`, and an allowed attempt writes that back. Absent: 0.
   */
  floorCount?: number;
  floorLast?: number;
}

export interface BackoffResult {
  allowed: boolean;
  /** Milliseconds until an attempt could be allowed (0 when allowed; the lock length at the hard limit). */
  retryAfterMs: number;
  /** Index of the rule that refused (the one with the longest wait), or -1. */
  refusedBy: number;
  /** Each bucket's count after this call (unchanged when refused). */
  counts: number[];
}

/** Parses a stored `count:last` (absent: 0, 0). */
export function parseBackoff(raw: string | null | undefined): { count: number; last: number } {
  if (raw === null || raw === undefined) return { count: 0, last: 0 };
  const [count = '0', last = '0'] = raw.split(':');
  return { count: Number(count), last: Number(last) };
}

/** Validates the rules of a reservation (integers, so Lua and JS compute the same). */
export function checkBackoffRules(rules: readonly BackoffRule[]): void {
  if (rules.length === 0) throw new RangeError('kv: reserveBackoff needs at least one rule');
  for (const r of rules) {
    const fields = { freeAttempts: r.freeAttempts, baseDelayMs: r.baseDelayMs, maxDelayMs: r.maxDelayMs, lockAfter: r.lockAfter, lockMs: r.lockMs, maxAttempts: r.maxAttempts, ttlMs: r.ttlMs, floorCount: r.floorCount ?? 0, floorLast: r.floorLast ?? 0 };
    for (const [name, value] of Object.entries(fields)) {
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`kv: backoff ${name} must be a non-negative integer, got ${String(value)}`);
    }
    if (r.ttlMs <= 0) throw new RangeError('kv: backoff ttlMs must be positive');
  }
}

/**
 * How long a bucket with `count` attempts, the latest at `last`, makes the next attempt wait at
 * `now`; -1 when the hard limit is reached (no wait ends it).
 */
export function backoffWait(rule: BackoffRule, count: number, last: number, now: number): number {
  if (rule.maxAttempts > 0 && count >= rule.maxAttempts) return -1;
  let delay = 0;
  if (rule.lockAfter > 0 && count >= rule.lockAfter) delay = rule.lockMs;
  else if (count >= rule.freeAttempts) delay = Math.min(rule.maxDelayMs, rule.baseDelayMs * 2 ** Math.min(count - rule.freeAttempts, 40));
  return Math.max(0, last + delay - now);
}

/** A bucket's state raised to its rule's floor (the count and time recorded outside the counter store). */
export function withFloor(rule: BackoffRule, state: { count: number; last: number }): { count: number; last: number } {
  const floorCount = rule.floorCount ?? 0;
  if (state.count >= floorCount) return state;
  return { count: floorCount, last: Math.max(state.last, rule.floorLast ?? 0) };
}

/**
 * The decision over all buckets (each first raised to its floor): refused when any bucket makes the attempt wait (the longest
 * wait is reported), otherwise every bucket counts it. Returns the new states to write.
 */
export function backoffDecision(rules: readonly BackoffRule[], stored: readonly { count: number; last: number }[], now: number): BackoffResult {
  const states = rules.map((rule, i) => withFloor(rule, stored[i] ?? { count: 0, last: 0 }));
  const waits = rules.map((rule, i) => backoffWait(rule, states[i]?.count ?? 0, states[i]?.last ?? 0, now));
  const counts = rules.map((_, i) => states[i]?.count ?? 0);
  // A bucket at its hard limit refuses first; no wait ends it, so the lock length is what a client is told.
  const hard = waits.indexOf(-1);
  if (hard >= 0) return { allowed: false, retryAfterMs: Math.max(rules[hard]?.lockMs ?? 0, 1000), refusedBy: hard, counts };
  let refusedBy = -1;
  let longest = 0;
  waits.forEach((wait, i) => {
    if (wait > longest) {
      longest = wait;
      refusedBy = i;
    }
  });
  if (refusedBy >= 0) return { allowed: false, retryAfterMs: longest, refusedBy, counts };
  return { allowed: true, retryAfterMs: 0, refusedBy: -1, counts: counts.map((c) => c + 1) };
}
