/**
 * The monthly call limit of an API key (GW-1, ABUSE-1): one kv counter per key and UTC month,
 * shared by every node (Redis) and counted before the call goes upstream. The counter expires a day
 * after its month ends. Over the limit: MONTHLY_LIMIT_REACHED (429) with `Retry-After` until the
 * next month. When the counter store cannot answer, `rateLimit.onStoreError` decides, as for rate
 * limits: closed refuses (503 SERVICE_UNAVAILABLE with `Retry-After`), open lets the call through
 * and logs.
 *
 * The kv counter is a cache of a durable number, not the number itself: the calls of a key in a
 * month are the usage records the meter writes (src/gateway/metering.ts). A counter that is
 * missing (every restart of the embedded node, whose kv is in memory; a Redis restart without
 * persistence; an eviction) is rebuilt from them, never started from zero:
 *   1. count on the existing counter (`incrExisting`), which answers "absent" instead of creating it;
 *   2. when absent: the calls this node has counted and not yet written (in flight, or buffered by
 *      the meter), then the key's usage records of the month in the database;
 *   3. `setIfAbsent` that sum (the first node to rebuild wins; the others' equal or older sums are
 *      dropped), then count on it as in 1.
 * So nodes that rebuild at once never count from zero, and a call at the limit is refused by every
 * node. What a rebuild cannot see: calls other nodes counted and have not yet written (at most one
 * `gateway.usageFlushMs` of their calls plus those still in flight), and, after a crash, the calls
 * the crashed node had not written (the same bound; see README "Metering").
 */
import type { Logger } from 'pino';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import { GatewayError } from './errors.ts';
import { monthAt, monthBounds } from './month.ts';

const DAY_MS = 86_400_000;
/** A client refused because the counter store is down may try again after this many seconds. */
const STORE_DOWN_RETRY_SECONDS = 5;

export interface MonthlyLimitDeps {
  kv: Kv;
  db: Db;
  logger: Logger;
  onStoreError: 'open' | 'closed';
  /** Calls of the key in the month counted on this node and not yet in the usage records. */
  unwrittenCalls: (keyId: string, month: string) => number;
}

/** The key fields the limit needs. */
export interface LimitedKey {
  id: string;
  tenantId: string;
  monthlyLimit: number | null;
}

/** Calls of one key in one month in the usage records (roll-up rows count their `requests`). */
export async function countRecordedCalls(db: Db, tenantId: string, keyId: string, month: string): Promise<number> {
  const { from, to } = monthBounds(month);
  const { rows } = await db.withTenant(tenantId, (tx) =>
    tx.query<{ calls: string }>(
      'select coalesce(sum(requests), 0)::bigint::text as calls from usage_records where api_key_id = $1 and created_at >= $2 and created_at < $3',
      [keyId, from.toISOString(), to.toISOString()],
    ),
  );
  return Number(rows[0]?.calls ?? 0);
}

/**
 * Creates the limit check. Rebuilds of one key on this node share one database read.
 * @example const count = createMonthlyLimit(deps); await count(key, Date.now())
 */
export function createMonthlyLimit(deps: MonthlyLimitDeps): (key: LimitedKey, now: number) => Promise<void> {
  const rebuilding = new Map<string, Promise<void>>();

  /** Seeds a missing counter with the durable count; concurrent callers of this node share it. */
  function rebuild(key: LimitedKey, counter: string, month: string, ttlMs: number): Promise<void> {
    let pending = rebuilding.get(counter);
    if (!pending) {
      pending = (async () => {
        // Unwritten first, then the database: a call written in between counts twice (a refusal
        // one call early), never zero times.
        const unwritten = deps.unwrittenCalls(key.id, month);
        const recorded = await countRecordedCalls(deps.db, key.tenantId, key.id, month);
        const seeded = await deps.kv.setIfAbsent(counter, String(recorded + unwritten), ttlMs);
        if (seeded) deps.logger.info({ keyId: key.id, month, recorded, unwritten }, 'monthly call count rebuilt from usage records');
      })().finally(() => rebuilding.delete(counter));
      rebuilding.set(counter, pending);
    }
    return pending;
  }

  async function count(key: LimitedKey, counter: string, month: string, ttlMs: number): Promise<number> {
    const counted = await deps.kv.incrExisting(counter, 1);
    if (counted !== null) return counted;
    await rebuild(key, counter, month, ttlMs);
    const again = await deps.kv.incrExisting(counter, 1);
    // Lost again between the seed and the count: the store is not keeping what it is given.
    if (again === null) throw new Error('monthly call counter vanished right after it was rebuilt');
    return again;
  }

  return async (key, now) => {
    const limit = key.monthlyLimit;
    if (limit === null) return;
    const { month, end } = monthAt(now);
    const counter = `gw:calls:${key.id}:${month}`;
    let counted: number;
    try {
      counted = await count(key, counter, month, end - now + DAY_MS);
    } catch (err) {
      // A count that cannot be read or rebuilt is never taken as "under the limit" unless the
      // operator chose availability (rateLimit.onStoreError: open).
      deps.logger.error({ err, keyId: key.id }, 'monthly limit store unavailable');
      if (deps.onStoreError === 'open') return;
      throw new AppError('SERVICE_UNAVAILABLE', undefined, { headers: { 'retry-after': String(STORE_DOWN_RETRY_SECONDS) } });
    }
    if (counted > limit) {
      throw new GatewayError('MONTHLY_LIMIT_REACHED', undefined, { headers: { 'retry-after': String(Math.max(1, Math.ceil((end - now) / 1000))) } });
    }
  };
}
