/**
 * The budget ledger in the database, the source of truth behind the kv counters (see the migration
 * 20261207T1600_budgets.sql): a row per reservation, written before kv counts it and updated with the
 * actual use before kv settles it, so a counter rebuilt at any moment is never below what kv admitted.
 *
 * Writes are group-committed per org: reservations and settlements that arrive in the same tick, or
 * while the org's batches in flight (at most PARALLEL_BATCHES) are being written, go together in
 * one transaction (one statement each), so many concurrent calls cost a few round trips, not two each.
 */
import type { Db } from '../store/db-types.ts';
import type { BudgetCategory, BudgetPeriod } from './categories.ts';

export type Amounts = Partial<Record<BudgetCategory, number>>;

export interface OpenRow {
  id: string;
  tenantId: string;
  workspaceId: string;
  apiKeyId: string | null;
  reserved: Amounts;
  requestId: string | null;
  day: string;
  month: string;
  createdAt: number;
  expiresAt: number;
}

export interface CloseRow {
  id: string;
  tenantId: string;
  state: 'settled' | 'expired' | 'refused';
  settled: Amounts;
  at: number;
}

/** A counter's scope: the org, one workspace, or one key. */
export interface CounterScope {
  tenantId: string;
  workspaceId: string | null;
  apiKeyId: string | null;
  category: BudgetCategory;
  period: BudgetPeriod;
  periodKey: string;
}

type Op = { kind: 'open'; row: OpenRow; done: (ok: boolean) => void; fail: (e: unknown) => void } | { kind: 'close'; row: CloseRow; done: (ok: boolean) => void; fail: (e: unknown) => void };

/** One batch of an org in one statement (the migration's budget_ledger_write); returns the ids it opened or closed. */
async function writeBatch(db: Db, tenantId: string, ops: readonly Op[]): Promise<Set<string>> {
  const opens = ops.flatMap((o) => (o.kind === 'open' ? [o.row] : []));
  const closes = ops.flatMap((o) => (o.kind === 'close' ? [o.row] : []));
  const iso = (ms: number): string => new Date(ms).toISOString();
  const { rows } = await db.query<{ id: string }>('select id from budget_ledger_write($1, $2::jsonb, $3::jsonb) as id', [
    tenantId,
    JSON.stringify(opens.map((r) => ({ id: r.id, ws: r.workspaceId, k: r.apiKeyId, r: r.reserved, req: r.requestId, d: r.day, m: r.month, c: iso(r.createdAt), e: iso(r.expiresAt) }))),
    JSON.stringify(closes.map((r) => ({ id: r.id, s: r.state, v: r.settled, t: iso(r.at) }))),
  ]);
  const changed = new Set<string>(opens.map((r) => r.id));
  for (const r of rows) changed.add(r.id);
  return changed;
}

export interface Ledger {
  /** Records an open reservation; resolves once committed. */
  open(row: OpenRow): Promise<void>;
  /** Closes an open reservation with its actual use; true when it was open (false: already closed). */
  close(row: CloseRow): Promise<boolean>;
  /** The durable state of a counter: settled use plus open reservations (id, amount). */
  counterState(scope: CounterScope): Promise<{ used: number; open: [string, number][] }>;
  /** Open reservations past their lifetime, any org (the sweep). */
  expired(limit: number): Promise<{ id: string; tenantId: string; apiKeyId: string | null; reserved: Amounts; createdAt: Date }[]>;
  /** AI use the key's usage records hold for the minute of `at` and no closed reservation claimed. */
  unclaimedUsage(tenantId: string, apiKeyId: string, at: Date): Promise<{ tokens: number; cost: number }>;
  /** Waits for the batches being written. */
  drain(): Promise<void>;
}

/** Batches of one org written at once (on separate connections): a batch never waits for more than this many before it. */
const PARALLEL_BATCHES = 4;

export function createLedger(db: Db): Ledger {
  const queues = new Map<string, Op[]>();
  const running = new Map<string, Set<Promise<void>>>();

  function schedule(tenantId: string): void {
    const batches = running.get(tenantId) ?? new Set<Promise<void>>();
    running.set(tenantId, batches);
    if (batches.size >= PARALLEL_BATCHES) return;
    const run: Promise<void> = (async () => {
      // Lets the callers of this tick join the batch.
      await new Promise<void>((r) => setImmediate(r));
      for (;;) {
        const ops = queues.get(tenantId) ?? [];
        queues.delete(tenantId);
        if (ops.length === 0) break;
        try {
          const changed = await writeBatch(db, tenantId, ops);
          for (const op of ops) op.done(changed.has(op.row.id));
        } catch (err) {
          for (const op of ops) op.fail(err);
        }
      }
    })().finally(() => {
      batches.delete(run);
      if (batches.size === 0 && running.get(tenantId) === batches) running.delete(tenantId);
      if (queues.has(tenantId)) schedule(tenantId);
    });
    batches.add(run);
  }

  function enqueue(tenantId: string, make: (done: (ok: boolean) => void, fail: (e: unknown) => void) => Op): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const list = queues.get(tenantId) ?? [];
      list.push(make(resolve, reject));
      queues.set(tenantId, list);
      schedule(tenantId);
    });
  }

  return {
    open: async (row) => {
      await enqueue(row.tenantId, (done, fail) => ({ kind: 'open', row, done, fail }));
    },
    close: (row) => enqueue(row.tenantId, (done, fail) => ({ kind: 'close', row, done, fail })),

    async counterState(scope) {
      const periodColumn = scope.period === 'day' ? 'day' : 'month';
      const where = `${periodColumn} = $1 and reserved ? $2 and ($3::uuid is null or workspace_id = $3) and ($4::text is null or api_key_id = $4)`;
      const args = [scope.periodKey, scope.category, scope.workspaceId, scope.apiKeyId];
      // One statement, one snapshot: with two, a reservation settled between them would be in neither.
      const { rows } = await db.withTenant(scope.tenantId, (tx) =>
        tx.query<{ settled: string; open: [string, number][] }>(
          `select coalesce(sum(coalesce((settled ->> $2)::bigint, 0)) filter (where state in ('settled', 'expired')), 0)::text as settled,
                  coalesce(jsonb_agg(jsonb_build_array(id, (reserved ->> $2)::bigint)) filter (where state = 'open'), '[]'::jsonb) as open
           from budget_ledger where ${where}`,
          args,
        ),
      );
      const open = (rows[0]?.open ?? []).map(([id, amount]) => [id, Number(amount)] as [string, number]);
      return { used: Number(rows[0]?.settled ?? 0) + open.reduce((sum, [, amount]) => sum + amount, 0), open };
    },

    async expired(limit) {
      const { rows } = await db.query<{ id: string; tenant_id: string; api_key_id: string | null; reserved: Amounts; created_at: Date }>(
        `select id, tenant_id, api_key_id, reserved, created_at from budget_ledger where state = 'open' and expires_at < now() order by expires_at limit $1`,
        [limit],
      );
      return rows.map((r) => ({ id: r.id, tenantId: r.tenant_id, apiKeyId: r.api_key_id, reserved: r.reserved, createdAt: new Date(r.created_at) }));
    },

    async unclaimedUsage(tenantId, apiKeyId, at) {
      const minute = new Date(Math.floor(at.getTime() / 60_000) * 60_000);
      const next = new Date(minute.getTime() + 60_000);
      return db.withTenant(tenantId, async (tx) => {
        const metered = await tx.query<{ tokens: string; cost: string }>(
          `select coalesce(sum(input_tokens + output_tokens), 0)::text as tokens, coalesce(sum(cost_micro_usd), 0)::text as cost
           from usage_records where api_key_id = $1 and created_at >= $2 and created_at < $3`,
          [apiKeyId, minute.toISOString(), next.toISOString()],
        );
        const claimed = await tx.query<{ tokens: string; cost: string }>(
          `select coalesce(sum(coalesce((settled ->> 'ai_tokens')::bigint, 0) + coalesce((settled ->> 'embedding_tokens')::bigint, 0)), 0)::text as tokens,
                  coalesce(sum(coalesce((settled ->> 'ai_cost')::bigint, 0)), 0)::text as cost
           from budget_ledger where api_key_id = $1 and created_at >= $2 and created_at < $3 and state in ('settled', 'expired')`,
          [apiKeyId, minute.toISOString(), next.toISOString()],
        );
        const m = metered.rows[0];
        const c = claimed.rows[0];
        return { tokens: Math.max(0, Number(m?.tokens ?? 0) - Number(c?.tokens ?? 0)), cost: Math.max(0, Number(m?.cost ?? 0) - Number(c?.cost ?? 0)) };
      });
    },

    async drain() {
      while (running.size > 0) await Promise.all([...running.values()].flatMap((set) => [...set]));
    },
  };
}
