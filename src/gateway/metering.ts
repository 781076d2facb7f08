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
 */
import type { Logger } from 'pino';
import type { Db, Queryable } from '../store/db-types.ts';
import { monthAt, monthBounds } from './month.ts';

export { monthAt, monthBounds, monthOf } from './month.ts';

/** One gateway call that reached a provider. */
export interface UsageRecord {
  tenantId: string;
  workspaceId: string;
  apiKeyId: string;
  /** The client token's subject (an end user or bot id, GW-6); null for an API key's own calls. */
  subject?: string | null;
  /** `platform:<id>` or `workspace:<name>`. */
  provider: string;
  /** The model the provider was asked for (after aliases). */
  model: string;
  inputTokens: number;
  outputTokens: number;
  estimated: boolean;
  /** Integer micro-dollars; null when the model has no price. */
  costMicroUsd: number | null;
  status: number;
  errorCode: string | null;
  durationMs: number;
  at: Date;
}

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
  unwrittenCalls(keyId: string, month: string): number;
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

/** Calls that share a usage row: one group of the roll-up. */
interface Rollup {
  tenantId: string;
  workspaceId: string;
  apiKeyId: string;
  subject: string | null;
  provider: string;
  model: string;
  estimated: boolean;
  status: number;
  errorCode: string | null;
  /** The start of the minute, ms. */
  minute: number;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  /** null when the calls had no price (a group is priced or not as a whole). */
  costMicroUsd: number | null;
  durationMs: number;
}

const MINUTE_MS = 60_000;

/** The group a call belongs to; the NUL separator cannot occur in any of the parts. */
function rollupKey(r: UsageRecord, minute: number): string {
  return `${r.tenantId}\u0000${r.workspaceId}\u0000${r.apiKeyId}\u0000${r.subject ?? ''}\u0000${r.provider}\u0000${r.model}\u0000${r.status}\u0000${r.errorCode ?? ''}\u0000${r.estimated ? 1 : 0}${r.costMicroUsd === null ? 0 : 1}\u0000${minute}`;
}

const INSERT_USAGE = `insert into usage_records
  (tenant_id, workspace_id, api_key_id, provider, model, input_tokens, output_tokens, estimated, cost_micro_usd, status, error_code, duration_ms, created_at, requests, subject)
  select $1::uuid, w, k, p, m, i, o, e, c, s, x, d, t, n, j
    from unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bool[], $9::bigint[], $10::smallint[], $11::text[], $12::bigint[], $13::timestamptz[], $14::int[], $15::text[])
      as u(w, k, p, m, i, o, e, c, s, x, d, t, n, j)`;

// Last-used only moves forward, whichever node writes last.
const UPDATE_LAST_USED = `update api_keys a set last_used_at = greatest(coalesce(a.last_used_at, u.t), u.t)
  from unnest($1::text[], $2::timestamptz[]) as u(id, t)
 where a.id = u.id`;

// A statement's arrays stay well below PostgreSQL's message and parameter limits.
const ROWS_PER_STATEMENT = 1000;

async function insertUsage(tx: Queryable, tenantId: string, rows: readonly Rollup[]): Promise<void> {
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    const part = rows.slice(i, i + ROWS_PER_STATEMENT);
    await tx.query(INSERT_USAGE, [
      tenantId,
      part.map((r) => r.workspaceId),
      part.map((r) => r.apiKeyId),
      part.map((r) => r.provider),
      part.map((r) => r.model),
      part.map((r) => r.inputTokens),
      part.map((r) => r.outputTokens),
      part.map((r) => r.estimated),
      part.map((r) => r.costMicroUsd),
      part.map((r) => r.status),
      part.map((r) => r.errorCode),
      part.map((r) => r.durationMs),
      part.map((r) => new Date(r.minute).toISOString()),
      part.map((r) => r.requests),
      part.map((r) => r.subject),
    ]);
  }
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
  let running: Promise<void> | null = null;
  let again = false;
  let closed = false;
  let dropped = 0;
  // Calls per key and month recorded and not yet committed; see `unwrittenCalls`.
  const unwritten = new Map<string, number>();
  const unwrittenKey = (keyId: string, minute: number): string => `${keyId}\u0000${monthAt(minute).month}`;
  const forget = (rows: Iterable<Rollup>): void => {
    for (const row of rows) {
      const key = unwrittenKey(row.apiKeyId, row.minute);
      const left = (unwritten.get(key) ?? 0) - row.requests;
      if (left > 0) unwritten.set(key, left);
      else unwritten.delete(key);
    }
  };

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
    const byTenant = new Map<string, { rows: Rollup[]; keys: [string, number][] }>();
    const group = (tenantId: string) => {
      let g = byTenant.get(tenantId);
      if (!g) {
        g = { rows: [], keys: [] };
        byTenant.set(tenantId, g);
      }
      return g;
    };
    for (const r of rows.values()) group(r.tenantId).rows.push(r);
    for (const [keyId, t] of touched) group(t.tenantId).keys.push([keyId, t.at]);
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
    const merged = new Map<string, Rollup>();
    for (const row of rows) merged.set(rollupKey(asRecord(row), row.minute), row);
    for (const [key, row] of buffer) {
      const earlier = merged.get(key);
      if (earlier) addInto(earlier, row);
      else merged.set(key, row);
    }
    buffer = merged;
    calls += rows.reduce((n, r) => n + r.requests, 0);
    const lost = bound();
    if (lost > 0) logger.error({ dropped: lost, droppedTotal: dropped }, 'usage buffer full: oldest usage records dropped');
    for (const [id, at] of keys) {
      const current = lastUsed.get(id);
      if (!current || current.at < at) lastUsed.set(id, { tenantId, at });
    }
  }

  function flush(): Promise<void> {
    if (running) {
      // Whatever arrived during this write goes in one more.
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await writeOnce();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  }

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
      const t = record.at.getTime();
      const minute = t - (((t % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);
      const key = rollupKey(record, minute);
      const row = buffer.get(key);
      calls++;
      const counted = unwrittenKey(record.apiKeyId, minute);
      unwritten.set(counted, (unwritten.get(counted) ?? 0) + 1);
      if (row) {
        addInto(row, { requests: 1, inputTokens: record.inputTokens, outputTokens: record.outputTokens, costMicroUsd: record.costMicroUsd, durationMs: record.durationMs });
        return;
      }
      buffer.set(key, {
        tenantId: record.tenantId,
        workspaceId: record.workspaceId,
        apiKeyId: record.apiKeyId,
        subject: record.subject ?? null,
        provider: record.provider,
        model: record.model,
        estimated: record.estimated,
        status: record.status,
        errorCode: record.errorCode,
        minute,
        requests: 1,
        inputTokens: record.inputTokens,
        outputTokens: record.outputTokens,
        costMicroUsd: record.costMicroUsd,
        durationMs: record.durationMs,
      });
      if (buffer.size > options.maxBuffered) bound();
      if (buffer.size >= batchSize && !running) setImmediate(() => void flush());
    },
    touchKey(tenantId, keyId, at) {
      const current = lastUsed.get(keyId);
      if (!current || current.at < at) lastUsed.set(keyId, { tenantId, at });
    },
    pendingLastUsed(keyId) {
      return lastUsed.get(keyId)?.at;
    },
    flush,
    get buffered() {
      return calls;
    },
    unwrittenCalls(keyId, month) {
      return unwritten.get(`${keyId}\u0000${month}`) ?? 0;
    },
    async close() {
      clearInterval(timer);
      await flush();
      closed = true;
      if (calls > 0) logger.error({ records: calls }, 'usage records could not be written before shutdown');
    },
  };
}

type Sums = Pick<Rollup, 'requests' | 'inputTokens' | 'outputTokens' | 'costMicroUsd' | 'durationMs'>;

/** Adds `from`'s calls to `into` (same group, so both are priced or both are not). */
function addInto(into: Sums, from: Sums): void {
  into.requests += from.requests;
  into.inputTokens += from.inputTokens;
  into.outputTokens += from.outputTokens;
  into.durationMs += from.durationMs;
  if (into.costMicroUsd !== null && from.costMicroUsd !== null) into.costMicroUsd += from.costMicroUsd;
}

/** A group's fields in the shape its key is computed from. */
function asRecord(row: Rollup): UsageRecord {
  return { ...row, at: new Date(row.minute) };
}

// ---------------------------------------------------------------------------------------------
// The report

/** Totals of a set of calls. */
export interface UsageTotals {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  costMicroUsd: number;
  /** Calls whose token counts were (partly) estimated. */
  estimatedRequests: number;
  /** Calls that ended with an error (status >= 400 or a stream broken off). */
  failedRequests: number;
}

export interface UsageReport {
  /** `YYYY-MM`, UTC. */
  month: string;
  from: string;
  to: string;
  org: UsageTotals;
  workspaces: (UsageTotals & { workspaceId: string })[];
  keys: (UsageTotals & { keyId: string; workspaceId: string; name: string | null })[];
}

const zero = (): UsageTotals => ({ requests: 0, inputTokens: 0, outputTokens: 0, costMicroUsd: 0, estimatedRequests: 0, failedRequests: 0 });

function add(into: UsageTotals, from: UsageTotals): void {
  into.requests += from.requests;
  into.inputTokens += from.inputTokens;
  into.outputTokens += from.outputTokens;
  into.costMicroUsd += from.costMicroUsd;
  into.estimatedRequests += from.estimatedRequests;
  into.failedRequests += from.failedRequests;
}


/**
 * An org's usage in one month, per key, per workspace and in total.
 * @example const report = await readUsageReport(db, orgId, '2026-11')
 */
export async function readUsageReport(db: Db, orgId: string, month: string): Promise<UsageReport> {
  const { from, to } = monthBounds(month);
  const { rows } = await db.withTenant(orgId, (tx) =>
    tx.query<{
      workspace_id: string;
      api_key_id: string;
      name: string | null;
      requests: number;
      input_tokens: string;
      output_tokens: string;
      cost: string;
      estimated: number;
      failed: number;
    }>(
      `select u.workspace_id, u.api_key_id, k.name, u.requests, u.input_tokens, u.output_tokens, u.cost, u.estimated, u.failed
         from (select workspace_id, api_key_id, sum(requests)::int as requests,
                      sum(input_tokens)::bigint::text as input_tokens, sum(output_tokens)::bigint::text as output_tokens,
                      coalesce(sum(cost_micro_usd), 0)::bigint::text as cost,
                      coalesce(sum(requests) filter (where estimated), 0)::int as estimated,
                      coalesce(sum(requests) filter (where status >= 400 or error_code is not null), 0)::int as failed
                 from usage_records
                where created_at >= $1 and created_at < $2
                group by workspace_id, api_key_id) u
         left join api_keys k on k.id = u.api_key_id
        order by u.workspace_id, u.api_key_id`,
      [from.toISOString(), to.toISOString()],
    ),
  );
  const org = zero();
  const workspaces = new Map<string, UsageTotals & { workspaceId: string }>();
  const keys: UsageReport['keys'] = [];
  for (const r of rows) {
    const totals: UsageTotals = {
      requests: r.requests,
      inputTokens: Number(r.input_tokens),
      outputTokens: Number(r.output_tokens),
      costMicroUsd: Number(r.cost),
      estimatedRequests: r.estimated,
      failedRequests: r.failed,
    };
    keys.push({ keyId: r.api_key_id, workspaceId: r.workspace_id, name: r.name, ...totals });
    let ws = workspaces.get(r.workspace_id);
    if (!ws) {
      ws = { workspaceId: r.workspace_id, ...zero() };
      workspaces.set(r.workspace_id, ws);
    }
    add(ws, totals);
    add(org, totals);
  }
  return { month, from: from.toISOString(), to: to.toISOString(), org, workspaces: [...workspaces.values()], keys };
}
