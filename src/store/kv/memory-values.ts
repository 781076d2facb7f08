/** The memory kv's plain values and counters: get/set, set-if-absent, delete and increments. */
import { assertInteger, assertPositiveInteger } from './args.ts';
import type { MemoryState } from './memory-state.ts';
import type { Kv } from './types.ts';

export type ValueOps = Pick<Kv, 'incr' | 'incrExisting' | 'get' | 'set' | 'setIfAbsent' | 'del'>;

/** Adds `by` to the counter at `key`, creating it with `ttlMs` when absent; an existing one keeps its TTL. */
export function incrementEntry(state: MemoryState, key: string, by: number, ttlMs: number): number {
  const entry = state.live(key);
  if (entry === undefined) {
    state.entries.set(key, { value: String(by), expiresAt: state.clock() + ttlMs });
    return by;
  }
  // Same rule as Redis INCRBY: only integer strings can be counters.
  if (!/^-?\d+$/.test(entry.value)) throw new Error(`kv: value at ${key} is not an integer`);
  const next = Number(entry.value) + by;
  if (!Number.isSafeInteger(next)) throw new RangeError(`kv: increment at ${key} would overflow`);
  entry.value = String(next);
  return next;
}

/** The value operations over one memory state. */
export function memoryValueOps(state: MemoryState): ValueOps {
  const { entries, clock } = state;
  return {
    async incr(key, by, ttlMs) {
      state.ensureOpen();
      assertInteger('by', by);
      assertPositiveInteger('ttlMs', ttlMs);
      return incrementEntry(state, key, by, ttlMs);
    },

    async incrExisting(key, by) {
      state.ensureOpen();
      assertInteger('by', by);
      // An existing entry keeps its TTL: incrementEntry only uses the TTL when it creates the key.
      return state.live(key) === undefined ? null : incrementEntry(state, key, by, 1);
    },

    async get(key) {
      state.ensureOpen();
      return state.live(key)?.value ?? null;
    },

    async set(key, value, ttlMs) {
      state.ensureOpen();
      assertPositiveInteger('ttlMs', ttlMs);
      entries.set(key, { value, expiresAt: clock() + ttlMs });
    },

    async setIfAbsent(key, value, ttlMs) {
      state.ensureOpen();
      assertPositiveInteger('ttlMs', ttlMs);
      if (state.live(key) !== undefined) return false;
      entries.set(key, { value, expiresAt: clock() + ttlMs });
      return true;
    },

    async del(key) {
      state.ensureOpen();
      entries.delete(key);
      state.budgets.delete(key);
    },
  };
}
