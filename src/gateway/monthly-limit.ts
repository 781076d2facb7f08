/**
 * The monthly call limit of an API key (GW-1, ABUSE-1): one kv counter per key and UTC month,
 * shared by every node (Redis) and counted before the call goes upstream. The counter expires a day
 * after its month ends. Over the limit: MONTHLY_LIMIT_REACHED (429) with `Retry-After` until the
 * next month. When the counter store cannot answer, `rateLimit.onStoreError` decides, as for rate
 * limits: closed refuses (503), open lets the call through and logs.
 */
import type { Logger } from 'pino';
import { AppError } from '../server/errors.ts';
import type { Kv } from '../store/kv/types.ts';
import { GatewayError } from './errors.ts';
import { monthBounds, monthOf } from './metering.ts';

const DAY_MS = 86_400_000;

// The current month and its end, computed once a month rather than on every call.
let cached = { month: '', start: 0, end: 0 };

function monthAt(now: number): { month: string; end: number } {
  if (now < cached.start || now >= cached.end) {
    const month = monthOf(now);
    const { from, to } = monthBounds(month);
    cached = { month, start: from.getTime(), end: to.getTime() };
  }
  return cached;
}

export interface MonthlyLimitDeps {
  kv: Kv;
  logger: Logger;
  onStoreError: 'open' | 'closed';
}

/**
 * Counts one call of `keyId` in the month of `now`; throws when it goes over `limit`.
 * @example await countMonthlyCall(deps, key.id, key.monthlyLimit, Date.now())
 */
export async function countMonthlyCall(deps: MonthlyLimitDeps, keyId: string, limit: number | null, now: number): Promise<void> {
  if (limit === null) return;
  const { month, end } = monthAt(now);
  let count: number;
  try {
    count = await deps.kv.incr(`gw:calls:${keyId}:${month}`, 1, end - now + DAY_MS);
  } catch (err) {
    deps.logger.error({ err, keyId }, 'monthly limit store unavailable');
    if (deps.onStoreError === 'open') return;
    throw new AppError('SERVICE_UNAVAILABLE');
  }
  if (count > limit) {
    throw new GatewayError('MONTHLY_LIMIT_REACHED', undefined, { headers: { 'retry-after': String(Math.max(1, Math.ceil((end - now) / 1000))) } });
  }
}
