/**
 * Metering (GW-4) without a database write on the request path: each gateway call adds a usage
 * record to an in-memory buffer and notes its key's last-used time in a map; a timer writes both
 * in batches (one transaction per org, one statement per table whatever the batch size), as does a
 * full buffer and shutdown. A failed write puts the batch back (up to `maxBuffered` records, then
 * the oldest are dropped and counted in an error log line), so a database blip loses nothing.
 *
 * Each node flushes its own buffer: the usage report shows another node's calls after that node's
 * next flush (`gateway.usageFlushMs`), and this node's at once (the report flushes it first).
 */
import type { Logger } from 'pino';
import type { Db, Queryable } from '../store/db-types.ts';

/** One gateway call that reached a provider. */
export interface UsageRecord {
  tenantId: string;
  workspaceId: string;
  apiKeyId: string;
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
  readonly buffered: number;
  /** Stops the timer and writes what is left. */
  close(): Promise<void>;
}

export interface MeterOptions {
  db: Db;
  logger: Logger;
  flushMs: number;
  maxBuffered: number;
  /** A batch this large is written at once, without waiting for the timer. Default 1000. */
  batchSize?: number;
}

const INSERT_USAGE = `insert into usage_records
  (tenant_id, workspace_id, api_key_id, provider, model, input_tokens, output_tokens, estimated, cost_micro_usd, status, error_code, duration_ms, created_at)
  select $1::uuid, w, k, p, m, i, o, e, c, s, x, d, t
    from unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::bool[], $9::bigint[], $10::smallint[], $11::text[], $12::int[], $13::timestamptz[])
      as u(w, k, p, m, i, o, e, c, s, x, d, t)`;

// Last-used only moves forward, whichever node writes last.
const UPDATE_LAST_USED = `update api_keys a set last_used_at = greatest(coalesce(a.last_used_at, u.t), u.t)
  from unnest($1::text[], $2::timestamptz[]) as u(id, t)
 where a.id = u.id`;

// A statement's arrays stay well below PostgreSQL's message and parameter limits.
const ROWS_PER_STATEMENT = 1000;

async function insertUsage(tx: Queryable, tenantId: string, records: readonly UsageRecord[]): Promise<void> {
  for (let i = 0; i < records.length; i += ROWS_PER_STATEMENT) {
    const part = records.slice(i, i + ROWS_PER_STATEMENT);
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
      part.map((r) => r.at.toISOString()),
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
  let buffer: UsageRecord[] = [];
  let lastUsed = new Map<string, { tenantId: string; at: number }>();
  let running: Promise<void> | null = null;
  let again = false;
  let closed = false;
  let dropped = 0;

  async function writeOnce(): Promise<void> {
    const records = buffer;
    const touched = lastUsed;
    buffer = [];
    lastUsed = new Map();
    if (records.length === 0 && touched.size === 0) return;
    const byTenant = new Map<string, { records: UsageRecord[]; keys: [string, number][] }>();
    const group = (tenantId: string) => {
      let g = byTenant.get(tenantId);
      if (!g) {
        g = { records: [], keys: [] };
        byTenant.set(tenantId, g);
      }
      return g;
    };
    for (const r of records) group(r.tenantId).records.push(r);
    for (const [keyId, t] of touched) group(t.tenantId).keys.push([keyId, t.at]);
    for (const [tenantId, g] of byTenant) {
      try {
        await db.withTenant(tenantId, async (tx) => {
          if (g.records.length > 0) await insertUsage(tx, tenantId, g.records);
          if (g.keys.length > 0) await tx.query(UPDATE_LAST_USED, [g.keys.map(([id]) => id), g.keys.map(([, at]) => new Date(at).toISOString())]);
        });
      } catch (err) {
        requeue(tenantId, g.records, g.keys);
        logger.error({ err, records: g.records.length }, 'could not write usage records; kept for the next flush');
      }
    }
  }

  /** Puts a failed batch back in front, newer records first to go when over the bound. */
  function requeue(tenantId: string, records: UsageRecord[], keys: [string, number][]): void {
    buffer = [...records, ...buffer];
    if (buffer.length > options.maxBuffered) {
      const over = buffer.length - options.maxBuffered;
      buffer = buffer.slice(over);
      dropped += over;
      logger.error({ dropped: over, droppedTotal: dropped }, 'usage buffer full: oldest usage records dropped');
    }
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
      buffer.push(record);
      if (buffer.length > options.maxBuffered) {
        buffer.shift();
        dropped++;
      }
      if (buffer.length >= batchSize && !running) setImmediate(() => void flush());
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
      return buffer.length;
    },
    async close() {
      clearInterval(timer);
      await flush();
      closed = true;
      if (buffer.length > 0) logger.error({ records: buffer.length }, 'usage records could not be written before shutdown');
    },
  };
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

/** The first instant of a `YYYY-MM` month and of the next one, UTC. */
export function monthBounds(month: string): { from: Date; to: Date } {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return { from: new Date(Date.UTC(y, m - 1, 1)), to: new Date(Date.UTC(y, m, 1)) };
}

/** `YYYY-MM` of an instant, UTC. */
export function monthOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
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
         from (select workspace_id, api_key_id, count(*)::int as requests,
                      sum(input_tokens)::bigint::text as input_tokens, sum(output_tokens)::bigint::text as output_tokens,
                      coalesce(sum(cost_micro_usd), 0)::bigint::text as cost,
                      (count(*) filter (where estimated))::int as estimated,
                      (count(*) filter (where status >= 400 or error_code is not null))::int as failed
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
