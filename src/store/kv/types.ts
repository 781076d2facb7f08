/**
 * Counters, a sliding-window limiter and pub/sub behind one interface:
 * memory.ts for one node, redis.ts (atomic Lua) for several. One shared suite
 * (test/store/suites/kv.shared-suite.ts) runs against both.
 */

export interface SlidingWindowResult {
  allowed: boolean;
  /** The configured limit. */
  limit: number;
  /** Requests still allowed in the current window (0 when refused). */
  remaining: number;
  /** Milliseconds until a request would be allowed again (0 when allowed). */
  retryAfterMs: number;
  /** Milliseconds until the window has fully reset. */
  resetMs: number;
}

export type { BackoffResult, BackoffRule } from './backoff.ts';
import type { BackoffResult, BackoffRule } from './backoff.ts';
export type { BudgetCounter, BudgetReserveResult } from './budget.ts';
import type { BudgetCounter, BudgetReserveResult } from './budget.ts';

export type MessageHandler = (message: string) => void;

export interface Kv {
  readonly kind: 'memory' | 'redis';
  /** Adds `by` to a counter; the TTL is set when the counter is created and kept after. Returns the new value. */
  incr(key: string, by: number, ttlMs: number): Promise<number>;
  /**
   * Adds `by` to a counter only when it exists (its TTL kept); null when it is absent or expired.
   * For counters rebuilt from a durable source when the store lost them: absent means "rebuild",
   * never "start from zero".
   */
  incrExisting(key: string, by: number): Promise<number | null>;
  /** Current value of a string or counter key, or null when absent or expired. */
  get(key: string): Promise<string | null>;
  /** Sets a value with a TTL. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Sets only when absent; true when this call set it. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  del(key: string): Promise<void>;
  /**
   * Sliding-window counter (the previous fixed window weighted by its overlap, plus the
   * current one), checked and counted atomically. `now` is injected for tests.
   * A refused request is not counted.
   */
  hitSlidingWindow(key: string, limit: number, windowMs: number, now?: number): Promise<SlidingWindowResult>;
  /**
   * Gives back one hit counted by hitSlidingWindow at `hitAt` (the instant passed to it): the
   * counter of that fixed window goes down by one, never below zero, keeping its TTL. For a
   * limit on failures that must reserve before checking: a success returns its reservation.
   */
  releaseSlidingWindow(key: string, windowMs: number, hitAt: number): Promise<void>;
  /**
   * Checks every bucket and, when none makes the attempt wait, counts it in all of them, as
   * one atomic step (see backoff.ts). `now` is injected for tests.
   */
  reserveBackoff(rules: readonly BackoffRule[], now?: number): Promise<BackoffResult>;
  /** Gives back one reserved attempt of a backoff bucket (never below zero), keeping its TTL. */
  releaseBackoff(key: string): Promise<void>;
  /**
   * Reserves `amount` in every counter when none would pass its limit, as one atomic step keyed by
   * the reservation's id (see budget.ts); absent counters are reported, never read as zero.
   */
  reserveBudget(reservationId: string, counters: readonly BudgetCounter[]): Promise<BudgetReserveResult>;
  /** Replaces the reservation's amount by the actual one in each counter that holds it open (one atomic step). */
  settleBudget(reservationId: string, settlements: readonly { key: string; amount: number }[]): Promise<void>;
  /** Creates an absent budget counter from a durable state (used, open reservations); false when it exists. */
  seedBudget(key: string, used: number, open: readonly (readonly [string, number])[], ttlMs: number): Promise<boolean>;
  /** A budget counter's `used`, or null when absent. */
  readBudget(key: string): Promise<number | null>;
  publish(channel: string, message: string): Promise<void>;
  /** Resolves once the subscription is active; returns an unsubscribe function. */
  subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>>;
  /**
   * Whether a message published now is known to reach every subscription of this node. Memory:
   * always (one process). Redis: only while the subscriber connection is up and Redis has
   * confirmed every subscribed channel on it; false while it is down or reconnecting, and before
   * the first subscription. A cache kept fresh by eviction messages must not be trusted while
   * this is false.
   */
  subscriptionsLive(): boolean;
  /**
   * Calls `listener(false)` when the subscriptions stop being live and `listener(true)` when they
   * are live again after a gap (messages published in between may have been missed: drop what
   * they would have evicted). Returns a function that removes the listener.
   */
  onSubscriptionsLive(listener: (live: boolean) => void): () => void;
  /** Throws when the store cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
