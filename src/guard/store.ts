/**
 * The guard's state: workspace policies (policy-store.ts) and the strikes and temporary blocks of
 * API keys and end users (strike-store.ts). The database is the source of truth for both.
 */
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import { createPolicyStore } from './policy-store.ts';
import { createStrikeStore } from './strike-store.ts';

export { userSubject, type StrikeResult, type StrikeRow, type Subject } from './strike-store.ts';

export interface GuardStoreDeps {
  db: Db;
  kv: Kv;
  now: () => number;
}

/** Builds the store; `start` subscribes to policy evictions, `close` unsubscribes. */
export function createGuardStore(deps: GuardStoreDeps) {
  return { ...createPolicyStore(deps), ...createStrikeStore(deps) };
}

export type GuardStore = ReturnType<typeof createGuardStore>;
