/**
 * Budget counters (ABUSE-2): reserve a call's worst case against several counters at once, as one
 * atomic step, and settle it later with what the call actually used. Decided here and mirrored line
 * for line by the Lua scripts in redis.ts, so both adapters answer identically.
 *
 * A counter holds `used` (settled amounts plus open reservations) and, per open reservation, the
 * amount it reserved. Keeping the open reservations by id makes both steps idempotent against a
 * counter rebuilt from the database (the source of truth) while calls are running:
 *   - a reservation the rebuild already counted (its ledger row was written before the reserve)
 *     is decided against `used`, which includes it; refused, it is taken out again;
 *   - a settle of a reservation the counter does not hold (settled before a rebuild read it as
 *     settled, or already settled) changes nothing.
 * A counter that is absent is never read as zero: the caller rebuilds it and tries again.
 */

/** One counter a reservation takes part in. */
export interface BudgetCounter {
  key: string;
  /** Worst case to reserve (a non-negative integer). */
  amount: number;
  /** The hard limit (a non-negative integer); the reservation is refused when `used + amount` exceeds it. */
  limit: number;
  /** Lifetime of the counter when the reservation has to rebuild it (kept after). */
  ttlMs: number;
}

export type BudgetReserveResult =
  /** Counted in every counter; `used` is each counter's value after it. */
  | { status: 'reserved'; used: number[] }
  /** Nothing counted: counter `index` would cross its limit; `used` is each counter's value. */
  | { status: 'refused'; index: number; used: number[] }
  /** Nothing counted: these counters are absent (rebuild them, then reserve again). */
  | { status: 'missing'; indexes: number[] };

/** One counter's state. */
export interface BudgetState {
  used: number;
  open: Map<string, number>;
}

/** Throws a RangeError unless the reservation's arguments are integers Lua and JS compute alike. */
export function checkBudgetArgs(reservationId: string, counters: readonly { key: string; amount: number; limit?: number; ttlMs?: number }[]): void {
  if (!/^[0-9A-Za-z_-]{1,64}$/.test(reservationId)) throw new RangeError('kv: budget reservation id must be 1-64 characters [0-9A-Za-z_-]');
  if (counters.length === 0) throw new RangeError('kv: a budget reservation needs at least one counter');
  for (const c of counters) {
    for (const [name, value] of Object.entries({ amount: c.amount, limit: c.limit ?? 0, ttlMs: c.ttlMs ?? 1 })) {
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`kv: budget ${name} must be a non-negative safe integer, got ${String(value)}`);
    }
    if (c.ttlMs !== undefined && c.ttlMs <= 0) throw new RangeError('kv: budget ttlMs must be positive');
  }
}

/**
 * The reserve decision over the counters' states (undefined: absent). Mutates the states when the
 * reservation is counted or taken out (refused after a rebuild counted it).
 */
export function budgetReserve(reservationId: string, counters: readonly BudgetCounter[], states: readonly (BudgetState | undefined)[]): BudgetReserveResult {
  const missing = counters.flatMap((_, i) => (states[i] === undefined ? [i] : []));
  if (missing.length > 0) return { status: 'missing', indexes: missing };
  const present = states as readonly BudgetState[];
  let refused = -1;
  counters.forEach((c, i) => {
    const s = present[i] as BudgetState;
    const after = s.open.has(reservationId) ? s.used : s.used + c.amount;
    if (refused < 0 && after > c.limit) refused = i;
  });
  if (refused >= 0) {
    for (const s of present) {
      const counted = s.open.get(reservationId);
      if (counted === undefined) continue;
      s.used -= counted;
      s.open.delete(reservationId);
    }
    return { status: 'refused', index: refused, used: present.map((s) => s.used) };
  }
  counters.forEach((c, i) => {
    const s = present[i] as BudgetState;
    if (s.open.has(reservationId)) return;
    s.used += c.amount;
    s.open.set(reservationId, c.amount);
  });
  return { status: 'reserved', used: present.map((s) => s.used) };
}

/** Settles a reservation in one counter: its reserved amount is replaced by `actual`. True when it was open there. */
export function budgetSettle(reservationId: string, actual: number, state: BudgetState | undefined): boolean {
  const reserved = state?.open.get(reservationId);
  if (state === undefined || reserved === undefined) return false;
  state.used += actual - reserved;
  state.open.delete(reservationId);
  return true;
}
