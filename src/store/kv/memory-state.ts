/**
 * The memory kv's state: keyed entries and budget counters with their expiry, the sweep that
 * bounds memory, and whether the store is closed. Lookups ignore what has expired.
 */
import { assertPositiveInteger } from './args.ts';
import type { BudgetState } from './budget.ts';

export interface MemoryEntry {
  value: string;
  expiresAt: number;
}

export interface MemoryState {
  /** Clock for TTLs and for limits called without `now`. */
  readonly clock: () => number;
  readonly entries: Map<string, MemoryEntry>;
  readonly budgets: Map<string, { state: BudgetState; expiresAt: number }>;
  /** The entry at `key`, or undefined when absent or expired (an expired one is dropped). */
  live(key: string): MemoryEntry | undefined;
  /** The budget counter at `key`, or undefined when absent or expired (an expired one is dropped). */
  budget(key: string): BudgetState | undefined;
  /** Throws once the store is closed. */
  ensureOpen(): void;
  isClosed(): boolean;
  /** Marks the store closed, stops the sweep and drops every entry and counter. */
  close(): void;
}

/** The state of one memory kv; its sweep timer never keeps the process alive. */
export function createMemoryState(clock: () => number, sweepIntervalMs: number): MemoryState {
  assertPositiveInteger('sweepIntervalMs', sweepIntervalMs);
  const entries = new Map<string, MemoryEntry>();
  const budgets = new Map<string, { state: BudgetState; expiresAt: number }>();
  let closed = false;

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

  return {
    clock,
    entries,
    budgets,

    live(key) {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      if (entry.expiresAt <= clock()) {
        entries.delete(key);
        return undefined;
      }
      return entry;
    },

    budget(key) {
      const entry = budgets.get(key);
      if (entry === undefined) return undefined;
      if (entry.expiresAt <= clock()) {
        budgets.delete(key);
        return undefined;
      }
      return entry.state;
    },

    ensureOpen() {
      if (closed) throw new Error('kv: memory store is closed');
    },

    isClosed() {
      return closed;
    },

    close() {
      closed = true;
      clearInterval(sweep);
      entries.clear();
      budgets.clear();
    },
  };
}
