/**
 * The meter's roll-up groups (GW-4): calls of one org, workspace, key, provider and model with the
 * same outcome in the same UTC minute share one usage row; the statements that write them.
 */
import type { Queryable } from '../store/db-types.ts';
import { monthAt } from './month.ts';

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

/** Calls that share a usage row: one group of the roll-up. */
export interface Rollup {
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

/** The start of the minute of `t` (ms). */
export function minuteOf(t: number): number {
  return t - (((t % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);
}

/** The group a call belongs to; the NUL separator cannot occur in any of the parts. */
export function rollupKey(r: UsageRecord, minute: number): string {
  return `${r.tenantId}\u0000${r.workspaceId}\u0000${r.apiKeyId}\u0000${r.subject ?? ''}\u0000${r.provider}\u0000${r.model}\u0000${r.status}\u0000${r.errorCode ?? ''}\u0000${r.estimated ? 1 : 0}${r.costMicroUsd === null ? 0 : 1}\u0000${minute}`;
}

const INSERT_USAGE = `insert into usage_records
  (tenant_id, workspace_id, api_key_id, provider, model, input_tokens, output_tokens, estimated, cost_micro_usd, status, error_code, duration_ms, created_at, requests, subject)
  select $1::uuid, w, k, p, m, i, o, e, c, s, x, d, t, n, j
    from unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bool[], $9::bigint[], $10::smallint[], $11::text[], $12::bigint[], $13::timestamptz[], $14::int[], $15::text[])
      as u(w, k, p, m, i, o, e, c, s, x, d, t, n, j)`;

// Last-used only moves forward, whichever node writes last.
export const UPDATE_LAST_USED = `update api_keys a set last_used_at = greatest(coalesce(a.last_used_at, u.t), u.t)
  from unnest($1::text[], $2::timestamptz[]) as u(id, t)
 where a.id = u.id`;

// A statement's arrays stay well below PostgreSQL's message and parameter limits.
const ROWS_PER_STATEMENT = 1000;

export async function insertUsage(tx: Queryable, tenantId: string, rows: readonly Rollup[]): Promise<void> {
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

/** A new group holding one call. */
export function newRollup(record: UsageRecord, minute: number): Rollup {
  return {
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
  };
}

type Sums = Pick<Rollup, 'requests' | 'inputTokens' | 'outputTokens' | 'costMicroUsd' | 'durationMs'>;

/** Adds `from`'s calls to `into` (same group, so both are priced or both are not). */
export function addInto(into: Sums, from: Sums): void {
  into.requests += from.requests;
  into.inputTokens += from.inputTokens;
  into.outputTokens += from.outputTokens;
  into.durationMs += from.durationMs;
  if (into.costMicroUsd !== null && from.costMicroUsd !== null) into.costMicroUsd += from.costMicroUsd;
}

/** A group's fields in the shape its key is computed from. */
export function asRecord(row: Rollup): UsageRecord {
  return { ...row, at: new Date(row.minute) };
}

/** A batch split per org: its groups and its keys' last-used times. */
export function groupByTenant(rows: Iterable<Rollup>, touched: ReadonlyMap<string, { tenantId: string; at: number }>): Map<string, { rows: Rollup[]; keys: [string, number][] }> {
  const byTenant = new Map<string, { rows: Rollup[]; keys: [string, number][] }>();
  const group = (tenantId: string) => {
    let g = byTenant.get(tenantId);
    if (!g) {
      g = { rows: [], keys: [] };
      byTenant.set(tenantId, g);
    }
    return g;
  };
  for (const r of rows) group(r.tenantId).rows.push(r);
  for (const [keyId, t] of touched) group(t.tenantId).keys.push([keyId, t.at]);
  return byTenant;
}

/**
 * Calls per key and month recorded and not yet committed (buffered or in a write under way): what
 * a rebuilt monthly count adds to the usage records.
 */
export function createUnwrittenCounts() {
  const unwritten = new Map<string, number>();
  // Per key, and per key and client-token subject (GW-6: a subject's monthly count is rebuilt with its own).
  const keyOf = (keyId: string, month: string, subject?: string | null): string => `${keyId}\u0000${month}${subject == null ? '' : `\u0000${subject}`}`;
  const change = (key: string, by: number): void => {
    const left = (unwritten.get(key) ?? 0) + by;
    if (left > 0) unwritten.set(key, left);
    else unwritten.delete(key);
  };
  return {
    add(keyId: string, minute: number, subject: string | null = null): void {
      const { month } = monthAt(minute);
      change(keyOf(keyId, month), 1);
      if (subject !== null) change(keyOf(keyId, month, subject), 1);
    },
    forget(rows: Iterable<Rollup>): void {
      for (const row of rows) {
        const { month } = monthAt(row.minute);
        change(keyOf(row.apiKeyId, month), -row.requests);
        if (row.subject !== null) change(keyOf(row.apiKeyId, month, row.subject), -row.requests);
      }
    },
    get(keyId: string, month: string, subject?: string): number {
      return unwritten.get(keyOf(keyId, month, subject)) ?? 0;
    },
  };
}

/** A failed batch put back in front of `buffer`, merged into groups that filled since (insertion order is age order). */
export function mergeInFront(rows: readonly Rollup[], buffer: ReadonlyMap<string, Rollup>): Map<string, Rollup> {
  const merged = new Map<string, Rollup>();
  for (const row of rows) merged.set(rollupKey(asRecord(row), row.minute), row);
  for (const [key, row] of buffer) {
    const earlier = merged.get(key);
    if (earlier) addInto(earlier, row);
    else merged.set(key, row);
  }
  return merged;
}

/**
 * `run` as one flight at a time: a call during a run shares it and asks for one more run, so what
 * arrived meanwhile is written too.
 */
export function repeatingFlight(run: () => Promise<void>): (() => Promise<void>) & { running: () => boolean } {
  let running: Promise<void> | null = null;
  let again = false;
  const flight = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await run();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  return Object.assign(flight, { running: () => running !== null });
}
