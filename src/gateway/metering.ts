/**
 * Metering (GW-4) without a database write on the request path: each gateway call is added to an
 * in-memory roll-up and its key's last-used time noted in a map; a timer writes both in batches
 * (one transaction per org, one statement per table whatever the batch size), as does a full
 * buffer and shutdown. A failed write puts the batch back (up to `maxBuffered` roll-up rows, then
 * the oldest are dropped and counted in an error log line), so a database blip loses nothing.
 *
 * The roll-up: calls of one org, workspace, key, provider and model with the same outcome (status,
 * error code, estimated or not, priced or not) in the same UTC minute share one usage row, which
 * holds their number (`requests`) and the sums of their tokens, cost and durations, dated at the
 * start of the minute (see the migration 20261123T0450_usage_rollup.sql). Every call is counted;
 * only the per-call detail finer than a minute is not kept. Under load this turns a thousand inserts
 * per second into a handful, which matters most on the embedded engine, whose writes run on the
 * server's own event loop.
 *
 * Each node flushes its own buffer: the usage report shows another node's calls after that node's
 * next flush (`gateway.usageFlushMs`), and this node's at once (the report flushes it first).
 *
 * The roll-up groups and their statements are in src/gateway/metering-rollup.ts, the report in
 * src/gateway/usage-report.ts.
 */
import type { Logger } from 'pino';
import type { Db } from '../store/db-types.ts';
import { addInto, createUnwrittenCounts, groupByTenant, insertUsage, mergeInFront, minuteOf, newRollup, repeatingFlight, rollupKey, UPDATE_LAST_USED, type Rollup } from './metering-rollup.ts';
import type { UsageRecord } from './metering-rollup.ts';

export { monthAt, monthBounds, monthOf } from './month.ts';
export type { UsageRecord } from './metering-rollup.ts';
export { readUsageReport, type UsageReport, type UsageTotals } from './usage-report.ts';


export interface Meter {
  record(record: UsageRecord): void;
  /** Notes that a key was used at `at` (ms): stored at the next flush. */
  touchKey(tenantId: string, keyId: string, at: number): void;
  /** This node's last-used time for a key not yet written, in ms. */
  pendingLastUsed(keyId: string): number | undefined;
  /** Writes everything buffered now. Concurrent calls share one write. */
  flush(): Promise<void>;
  /** Calls recorded and not yet written. */
  readonly buffered: number;
  /**
   * Calls of `keyId` in `month` (`YYYY-MM`) recorded on this node and not yet committed (buffered
   * or in a write under way): what a rebuilt monthly count adds to the usage records.
   */
  unwrittenCalls(keyId: string, month: string, subject?: string): number;
  /** Stops the timer and writes what is left. */
  close(): Promise<void>;
}

export interface MeterOptions {
  db: Db;
  logger: Logger;
  flushMs: number;
  /** Most roll-up rows held while the database cannot take them; the oldest go first. */
  maxBuffered: number;
  /** This many roll-up rows are written at once, without waiting for the timer. Default 1000. */
  batchSize?: number;
}

/**
 * Starts a meter with its flush timer.
 * @example const meter = createMeter({ db, logger, flushMs: 1000, maxBuffered: 100_000 })
 */
export function createMeter(options: MeterOptions): Meter {
  const { db, logger } = options;
  const batchSize = options.batchSize ?? 1000;
  // Insertion order is age order: the oldest group is the first key.
  let buffer = new Map<string, Rollup>();
  let calls = 0;
  let lastUsed = new Map<string, { tenantId: string; at: number }>();
  let closed = false;
  let dropped = 0;
  // Calls per key and month recorded and not yet committed; see `unwrittenCalls`.
  const unwritten = createUnwrittenCounts();
  const forget = (rows: Iterable<Rollup>): void => unwritten.forget(rows);

  /** Drops the oldest groups beyond `maxBuffered`; returns the calls dropped. */
  function bound(): number {
    let over = buffer.size - options.maxBuffered;
    let lost = 0;
    for (const [key, row] of buffer) {
      if (over-- <= 0) break;
      buffer.delete(key);
      forget([row]);
      calls -= row.requests;
      lost += row.requests;
    }
    dropped += lost;
    return lost;
  }

  async function writeOnce(): Promise<void> {
    const rows = buffer;
    const touched = lastUsed;
    buffer = new Map();
    calls = 0;
    lastUsed = new Map();
    if (rows.size === 0 && touched.size === 0) return;
    const byTenant = groupByTenant(rows.values(), touched);
    for (const [tenantId, g] of byTenant) {
      try {
        await db.withTenant(tenantId, async (tx) => {
          if (g.rows.length > 0) await insertUsage(tx, tenantId, g.rows);
          if (g.keys.length > 0) await tx.query(UPDATE_LAST_USED, [g.keys.map(([id]) => id), g.keys.map(([, at]) => new Date(at).toISOString())]);
        });
        forget(g.rows);
      } catch (err) {
        requeue(tenantId, g.rows, g.keys);
        logger.error({ err, records: g.rows.reduce((n, r) => n + r.requests, 0) }, 'could not write usage records; kept for the next flush');
      }
    }
  }

  /** Puts a failed batch back in front (merged into groups that filled since), oldest first to go when over the bound. */
  function requeue(tenantId: string, rows: Rollup[], keys: [string, number][]): void {
    buffer = mergeInFront(rows, buffer);
    calls += rows.reduce((n, r) => n + r.requests, 0);
    const lost = bound();
    if (lost > 0) logger.error({ dropped: lost, droppedTotal: dropped }, 'usage buffer full: oldest usage records dropped');
    for (const [id, at] of keys) {
      const current = lastUsed.get(id);
      if (!current || current.at < at) lastUsed.set(id, { tenantId, at });
    }
  }

  // Concurrent calls share one write; whatever arrives during a write goes in one more.
  const flush = repeatingFlight(writeOnce);

  const timer = setInterval(() => {
    void flush();
  }, options.flushMs);
  timer.unref();

  return {
    record(record) {
      if (closed) {
        logger.error({ tenantId: record.tenantId }, 'usage record after the meter closed: dropped');
        return;
      }
      const minute = minuteOf(record.at.getTime());
      const key = rollupKey(record, minute);
      const row = buffer.get(key);
      calls++;
      unwritten.add(record.apiKeyId, minute, record.subject ?? null);
      if (row) {
        addInto(row, { requests: 1, inputTokens: record.inputTokens, outputTokens: record.outputTokens, costMicroUsd: record.costMicroUsd, durationMs: record.durationMs });
        return;
      }
      buffer.set(key, newRollup(record, minute));
      if (buffer.size > options.maxBuffered) bound();
      if (buffer.size >= batchSize && !flush.running()) setImmediate(() => void flush());
    },
    touchKey(tenantId, keyId, at) {
      const current = lastUsed.get(keyId);
      if (!current || current.at < at) lastUsed.set(keyId, { tenantId, at });
    },
    pendingLastUsed(keyId) {
      return lastUsed.get(keyId)?.at;
    },
    flush: () => flush(),
    get buffered() {
      return calls;
    },
    unwrittenCalls(keyId, month, subject) {
      return unwritten.get(keyId, month, subject);
    },
    async close() {
      clearInterval(timer);
      await flush();
      closed = true;
      if (calls > 0) logger.error({ records: calls }, 'usage records could not be written before shutdown');
    },
  };
}
