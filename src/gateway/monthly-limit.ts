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
 *
 * A client token may carry a monthly call limit for its subject (GW-6, claim `gh_mcl`): a second
 * counter per key, subject and month, checked first, rebuilt the same way from the usage records and
 * this node's unwritten calls of that key and subject.
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
  /** Calls of the key (with `subject`: of that subject through the key) in the month counted on this node and not yet in the usage records. */
  unwrittenCalls: (keyId: string, month: string, subject?: string) => number;
}

/** The key fields the limit needs; `delegation`: a client token's subject and its own monthly budget (GW-6). */
export interface LimitedKey {
  id: string;
  tenantId: string;
  monthlyLimit: number | null;
  delegation?: { subject: string | null; monthlyCallLimit: number | null };
}

/** Calls of one key in one month in the usage records (roll-up rows count their `requests`). */
export async function countRecordedCalls(db: Db, tenantId: string, keyId: string, month: string, subject?: string): Promise<number> {
  const { from, to } = monthBounds(month);
  const bySubject = subject === undefined ? '' : ' and subject = $4';
  const { rows } = await db.withTenant(tenantId, (tx) =>
    tx.query<{ calls: string }>(
      `select coalesce(sum(requests), 0)::bigint::text as calls from usage_records where api_key_id = $1 and created_at >= $2 and created_at < $3${bySubject}`,
      [keyId, from.toISOString(), to.toISOString(), ...(subject === undefined ? [] : [subject])],
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
  function rebuild(key: LimitedKey, counter: string, month: string, ttlMs: number, subject?: string): Promise<void> {
    let pending = rebuilding.get(counter);
    if (!pending) {
      pending = (async () => {
        // Unwritten first, then the database: a call written in between counts twice (a refusal
        // one call early), never zero times.
        const unwritten = deps.unwrittenCalls(key.id, month, subject);
        const recorded = await countRecordedCalls(deps.db, key.tenantId, key.id, month, subject);
        const seeded = await deps.kv.setIfAbsent(counter, String(recorded + unwritten), ttlMs);
        if (seeded) deps.logger.info({ keyId: key.id, month, recorded, unwritten }, 'monthly call count rebuilt from usage records');
      })().finally(() => rebuilding.delete(counter));
      rebuilding.set(counter, pending);
    }
    return pending;
  }

  async function count(key: LimitedKey, counter: string, month: string, ttlMs: number, subject?: string): Promise<number> {
    const counted = await deps.kv.incrExisting(counter, 1);
    if (counted !== null) return counted;
    await rebuild(key, counter, month, ttlMs, subject);
    const again = await deps.kv.incrExisting(counter, 1);
    // Lost again between the seed and the count: the store is not keeping what it is given.
    if (again === null) throw new Error('monthly call counter vanished right after it was rebuilt');
    return again;
  }

  /** One monthly counter: the key's own, or (with `subject`) one subject's calls through the key's client tokens. */
  function counterOf(key: LimitedKey, month: string, subject?: string): string {
    return subject === undefined ? `gw:calls:${key.id}:${month}` : `gw:calls:${key.id}:sub:${Buffer.from(subject).toString('base64url')}:${month}`;
  }

  async function check(key: LimitedKey, limit: number, now: number, subject?: string): Promise<void> {
    const { month, end } = monthAt(now);
    const counter = counterOf(key, month, subject);
    let counted: number;
    try {
      counted = await count(key, counter, month, end - now + DAY_MS, subject);
    } catch (err) {
      // A count that cannot be read or rebuilt is never taken as "under the limit" unless the
      // operator chose availability (rateLimit.onStoreError: open).
      deps.logger.error({ err, keyId: key.id }, 'monthly limit store unavailable');
      if (deps.onStoreError === 'open') return;
      throw new AppError('SERVICE_UNAVAILABLE', undefined, { headers: { 'retry-after': String(STORE_DOWN_RETRY_SECONDS) } });
    }
    if (counted > limit) {
      const message = subject === undefined ? undefined : "The monthly call limit of this token's subject is reached.";
      throw new GatewayError('MONTHLY_LIMIT_REACHED', message, { headers: { 'retry-after': String(Math.max(1, Math.ceil((end - now) / 1000))) } });
    }
  }

  return async (key, now) => {
    // The subject's budget first (GW-6): one bot cannot spend the whole key's month.
    const subject = key.delegation?.subject ?? null;
    const subjectLimit = key.delegation?.monthlyCallLimit ?? null;
    // The key's counter is not touched by a call the subject's budget refused: a bot hammering
    // past its own budget does not use up the other subjects' share of the key's month.
    if (subject !== null && subjectLimit !== null) await check(key, subjectLimit, now, subject);
    if (key.monthlyLimit === null) return;
    try {
      await check(key, key.monthlyLimit, now);
    } catch (err) {
      // Refused by the key's limit: the call is not the subject's either (best effort; a failed
      // give-back only refuses the subject early, and a rebuild counts the usage records).
      if (subject !== null && subjectLimit !== null) {
        await deps.kv.incrExisting(counterOf(key, monthAt(now).month, subject), -1).catch((e: unknown) => deps.logger.warn({ err: e, keyId: key.id }, 'giving back a subject\'s monthly count failed'));
      }
      throw err;
    }
  };
}
