/**
 * The budget engine (ABUSE-2): reserve before, settle after, exact across nodes.
 *
 * reserve(): the budgets that apply (org, the call's workspace, its API key; the categories the
 * call uses; each with its UTC day or month) each have one kv counter. The reservation is written
 * to the ledger (database) first, then reserved in every counter as one atomic kv step
 * (src/store/kv/budget.ts; one Lua script on Redis) that refuses when any counter would pass its
 * hard limit. An absent counter (Redis flushed or restarted, an embedded node restarted) is rebuilt
 * from the ledger, never read as zero. settle(): the actual use goes to the ledger first, then
 * replaces the reservation in the counters. A reservation that never settles expires and is
 * settled from the usage records (sweep()).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge, type Metric } from 'prom-client';
import { AppError } from '../server/errors.ts';
import type { BudgetCounter, Kv } from '../store/kv/types.ts';
import { exceededCode, periodEnd, periodKeys, type BudgetCategory } from './categories.ts';
import type { Budget, Definitions } from './definitions.ts';
import type { Amounts, CounterScope, Ledger } from './ledger.ts';

const DAY_MS = 86_400_000;
/** A client refused because the counter store is down may try again after this many seconds. */
const STORE_DOWN_RETRY_SECONDS = 5;
export const BUDGET_WARNING_HEADER = 'x-gatehouse-budget-warning';

export interface ReserveRequest {
  orgId: string;
  workspaceId: string;
  apiKeyId: string | null;
  /** Worst case per category (non-negative integers). */
  amounts: Amounts;
  requestId: string | null;
}

export interface Reservation {
  /** Response headers: the soft-limit warning, when one applies. */
  headers: Record<string, string>;
  /** Settles with the actual use (undefined: nothing used, everything is given back). Once. */
  settle(actual: Amounts | undefined): Promise<void>;
}

/** A budget's use in its current period, as the API shows it. */
export interface BudgetUse {
  used: number;
  remaining: number;
  resetAt: string;
}

interface Applied {
  budget: Budget;
  counter: BudgetCounter;
  scope: CounterScope;
}

export interface EngineDeps {
  kv: Kv;
  definitions: Definitions;
  ledger: Ledger;
  logger: Logger;
  now: () => number;
  onStoreError: 'open' | 'closed';
  reservationTtlMs: number;
  /** A soft limit crossed for the first time in a period (one node calls it; audit, mail). */
  onSoftLimit: (budget: Budget, used: number, periodKey: string) => Promise<void>;
  /** A hard limit refused a call (first time per budget and period on this node). */
  onRefusal: (budget: Budget, periodKey: string) => Promise<void>;
}

function scopeMatches(b: Budget, r: ReserveRequest): boolean {
  return (b.workspaceId === null || b.workspaceId === r.workspaceId) && (b.apiKeyId === null || b.apiKeyId === r.apiKeyId);
}

export function counterKey(s: CounterScope): string {
  return `bdg:${s.tenantId}:${s.workspaceId ?? '-'}:${s.apiKeyId ?? '-'}:${s.category}:${s.periodKey}`;
}

export function createBudgetMetrics() {
  const reservations = new Counter({ name: 'gatehouse_budget_reservations_total', help: 'Budget reservations counted, by category.', labelNames: ['category'], registers: [] });
  const refusals = new Counter({ name: 'gatehouse_budget_refusals_total', help: 'Calls refused by a budget\'s hard limit, by category.', labelNames: ['category'], registers: [] });
  const softLimits = new Counter({ name: 'gatehouse_budget_soft_limit_crossings_total', help: 'Soft limits crossed (once per budget and period), by category.', labelNames: ['category'], registers: [] });
  const settled = new Counter({ name: 'gatehouse_budget_settled_total', help: 'Use settled against budgets (tokens, micro-dollars, files, bytes, messages), by category.', labelNames: ['category'], registers: [] });
  const open = new Gauge({ name: 'gatehouse_budget_open_reservations', help: 'Reservations this node holds open (calls running).', registers: [] });
  const expired = new Counter({ name: 'gatehouse_budget_expired_reservations_total', help: 'Reservations that never settled and were settled from the usage records by this node.', registers: [] });
  return { reservations, refusals, softLimits, settled, open, expired, all: [reservations, refusals, softLimits, settled, open, expired] as Metric[] };
}
export type BudgetMetrics = ReturnType<typeof createBudgetMetrics>;

/** Adds to a per-node memo, bounded (forgetting costs a database check or an extra audit event). */
function remember(set: Set<string>, memo: string): void {
  if (set.size >= 10_000) set.clear();
  set.add(memo);
}

export function createBudgetEngine(deps: EngineDeps, metrics: BudgetMetrics) {
  const { kv, definitions, ledger, logger, now } = deps;
  // Budget and period pairs this node already warned or refused for (bounded: forgetting one costs a
  // database check for the warning, an extra audit event for a refusal).
  const refusedOnce = new Set<string>();

  function applied(budgets: readonly Budget[], r: ReserveRequest, at: number): Applied[] {
    const keys = periodKeys(at);
    return budgets
      .filter((b) => r.amounts[b.category] !== undefined && scopeMatches(b, r))
      .map((budget) => {
        const scope: CounterScope = { tenantId: r.orgId, workspaceId: budget.workspaceId, apiKeyId: budget.apiKeyId, category: budget.category, period: budget.period, periodKey: keys[budget.period] };
        const ttlMs = periodEnd(budget.period, at) - at + 2 * DAY_MS;
        return { budget, scope, counter: { key: counterKey(scope), amount: r.amounts[budget.category] ?? 0, limit: budget.hardLimit, ttlMs } };
      });
  }

  const rebuild = createRebuild(deps);
  const softWarnings = createSoftWarnings(deps, metrics);

  async function refuse(list: readonly Applied[], index: number, id: string, at: number, orgId: string): Promise<never> {
    const a = list[index] as Applied;
    // Refused: the ledger row closes with nothing used, and a counter rebuilt meanwhile gives it back.
    // A ledger that cannot record the refusal leaves the row open: it expires and gives nothing back it did not take.
    await ledger.close({ id, tenantId: orgId, state: 'refused', settled: {}, at }).catch((err: unknown) => logger.error({ err }, 'budget refusal not recorded in the ledger'));
    await kv.settleBudget(id, list.map((x) => ({ key: x.counter.key, amount: 0 }))).catch((err: unknown) => logger.error({ err }, 'budget release after refusal failed'));
    metrics.refusals.inc({ category: a.budget.category });
    const memo = `${a.budget.id}:${a.scope.periodKey}`;
    if (!refusedOnce.has(memo)) {
      remember(refusedOnce, memo);
      void deps.onRefusal(a.budget, a.scope.periodKey).catch((err: unknown) => logger.error({ err }, 'budget refusal audit failed'));
    }
    const retryAfter = Math.max(1, Math.ceil((periodEnd(a.budget.period, at) - at) / 1000));
    throw new AppError(exceededCode(a.budget.category), undefined, { headers: { 'retry-after': String(retryAfter) } });
  }

  /** Counts in kv, rebuilding absent counters; null when the counter store cannot answer. */
  async function count(id: string, list: readonly Applied[]) {
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const result = await kv.reserveBudget(id, list.map((a) => a.counter));
        if (result.status !== 'missing') return result;
        await Promise.all(result.indexes.map((i) => rebuild(list[i] as Applied)));
      }
      throw new Error('budget counters vanished right after they were rebuilt');
    } catch (err) {
      if (err instanceof AppError) throw err;
      logger.error({ err }, 'budget counter store unavailable');
      return null;
    }
  }

  async function reserve(r: ReserveRequest): Promise<Reservation> {
    const at = now();
    const list = applied(await definitions.forOrg(r.orgId), r, at);
    if (list.length === 0) return { headers: {}, settle: async () => undefined };
    const id = randomBytes(18).toString('base64url');
    const reserved: Amounts = {};
    for (const a of list) reserved[a.budget.category] = a.counter.amount;
    const keys = periodKeys(at);
    try {
      await ledger.open({ id, tenantId: r.orgId, workspaceId: r.workspaceId, apiKeyId: r.apiKeyId, reserved, requestId: r.requestId, day: keys.day, month: keys.month, createdAt: at, expiresAt: at + deps.reservationTtlMs });
    } catch (err) {
      logger.error({ err }, 'budget ledger unavailable');
      throw new AppError('SERVICE_UNAVAILABLE', undefined, { headers: { 'retry-after': String(STORE_DOWN_RETRY_SECONDS) } });
    }
    const result = await count(id, list);
    if (result === null && deps.onStoreError === 'closed') {
      await ledger.close({ id, tenantId: r.orgId, state: 'refused', settled: {}, at }).catch(() => undefined);
      throw new AppError('SERVICE_UNAVAILABLE', undefined, { headers: { 'retry-after': String(STORE_DOWN_RETRY_SECONDS) } });
    }
    if (result?.status === 'refused') return refuse(list, result.index, id, at, r.orgId);
    for (const a of list) metrics.reservations.inc({ category: a.budget.category });
    metrics.open.inc();
    const headers = result?.status === 'reserved' ? softWarnings(list, result.used) : {};
    let settled = false;
    return {
      headers,
      settle: async (actual) => {
        if (settled) return;
        settled = true;
        metrics.open.dec();
        const use: Amounts = {};
        for (const a of list) use[a.budget.category] = Math.max(0, Math.floor(actual?.[a.budget.category] ?? 0));
        // Ledger first: a counter rebuilt from now on reads the actual use, and the kv step below finds nothing to do.
        const closed = await ledger.close({ id, tenantId: r.orgId, state: 'settled', settled: use, at: now() });
        if (!closed) return;
        for (const [category, amount] of Object.entries(use)) metrics.settled.inc({ category }, amount);
        // The ledger has the truth now; a counter store that cannot take the settle keeps the
        // reserved amount (refusing early, never late) until the counter is rebuilt.
        await kv.settleBudget(id, list.map((a) => ({ key: a.counter.key, amount: use[a.budget.category] ?? 0 }))).catch((err: unknown) => logger.error({ err }, 'budget settle not applied to the counters'));
      },
    };
  }

  return {
    reserve,
    sweep: (limit = 500) => sweepExpired(deps, metrics, limit),
    useOf: (budget: Budget) => useOfBudget(deps, rebuild, budget),
  };
}
export type BudgetEngine = ReturnType<typeof createBudgetEngine>;

/** Seeds an absent counter from the ledger; callers on this node share one rebuild per counter. */
function createRebuild(deps: Pick<EngineDeps, 'kv' | 'ledger' | 'logger'>): (a: Applied) => Promise<void> {
  const rebuilding = new Map<string, Promise<void>>();
  return (a) => {
    let pending = rebuilding.get(a.counter.key);
    if (!pending) {
      pending = (async () => {
        const state = await deps.ledger.counterState(a.scope);
        const seeded = await deps.kv.seedBudget(a.counter.key, state.used, state.open, a.counter.ttlMs);
        if (seeded) deps.logger.info({ counter: a.counter.key, used: state.used, open: state.open.length }, 'budget counter rebuilt from the ledger');
      })().finally(() => rebuilding.delete(a.counter.key));
      rebuilding.set(a.counter.key, pending);
    }
    return pending;
  };
}

/** Settles open reservations past their lifetime from the usage records. Returns how many. */
async function sweepExpired(deps: EngineDeps, metrics: BudgetMetrics, limit: number): Promise<number> {
  const { kv, ledger, definitions, now } = deps;
  const rows = await ledger.expired(limit);
  let done = 0;
  for (const row of rows) {
    const metered = row.apiKeyId ? await ledger.unclaimedUsage(row.tenantId, row.apiKeyId, row.createdAt) : { tokens: 0, cost: 0 };
    const use: Amounts = {};
    for (const [category, reserved] of Object.entries(row.reserved) as [BudgetCategory, number][]) {
      const found = category === 'ai_cost' ? metered.cost : category === 'ai_tokens' || category === 'embedding_tokens' ? metered.tokens : 0;
      use[category] = Math.min(reserved, found);
    }
    const closed = await ledger.close({ id: row.id, tenantId: row.tenantId, state: 'expired', settled: use, at: now() });
    if (!closed) continue;
    done++;
    metrics.expired.inc();
    // The counters are found again from the reservation's scope: every budget of the org that could hold it.
    const keys = periodKeys(row.createdAt.getTime());
    const budgets = await definitions.forOrg(row.tenantId);
    const settlements = budgets
      .filter((b) => use[b.category] !== undefined)
      .map((b) => ({ key: counterKey({ tenantId: row.tenantId, workspaceId: b.workspaceId, apiKeyId: b.apiKeyId, category: b.category, period: b.period, periodKey: keys[b.period] }), amount: use[b.category] ?? 0 }));
    if (settlements.length > 0) await kv.settleBudget(row.id, settlements);
  }
  return done;
}

/** A budget's use in its current period (the counter, rebuilt when absent). */
async function useOfBudget(deps: EngineDeps, rebuild: (a: Applied) => Promise<void>, budget: Budget): Promise<BudgetUse> {
  const at = deps.now();
  const scope: CounterScope = { tenantId: budget.orgId, workspaceId: budget.workspaceId, apiKeyId: budget.apiKeyId, category: budget.category, period: budget.period, periodKey: periodKeys(at)[budget.period] };
  const key = counterKey(scope);
  let used = await deps.kv.readBudget(key);
  if (used === null) {
    await rebuild({ budget, scope, counter: { key, amount: 0, limit: budget.hardLimit, ttlMs: periodEnd(budget.period, at) - at + 2 * DAY_MS } });
    used = (await deps.kv.readBudget(key)) ?? 0;
  }
  return { used, remaining: Math.max(0, budget.hardLimit - used), resetAt: new Date(periodEnd(budget.period, at)).toISOString() };
}

/** The soft-limit header of a reservation; the first crossing of a budget's period is claimed once across nodes and reported. */
function createSoftWarnings(deps: EngineDeps, metrics: BudgetMetrics): (list: readonly Applied[], used: readonly number[]) => Record<string, string> {
  const { definitions, logger } = deps;
  const warned = new Set<string>();
  return (list: readonly Applied[], used: readonly number[]): Record<string, string> => {
    const parts: string[] = [];
    list.forEach((a, i) => {
      const soft = a.budget.softLimit;
      const u = used[i] ?? 0;
      if (soft === null || u < soft) return;
      parts.push(`${a.budget.category}; scope=${a.budget.apiKeyId ? 'key' : a.budget.workspaceId ? 'workspace' : 'org'}; period=${a.budget.period}; used=${u}; soft=${soft}; hard=${a.budget.hardLimit}`);
      const memo = `${a.budget.id}:${a.scope.periodKey}`;
      if (warned.has(memo)) return;
      remember(warned, memo);
      void definitions
        .claimWarning(a.budget.orgId, a.budget.id, a.scope.periodKey)
        .then(async (mine) => {
          if (!mine) return;
          metrics.softLimits.inc({ category: a.budget.category });
          await deps.onSoftLimit(a.budget, u, a.scope.periodKey);
        })
        .catch((err: unknown) => {
          warned.delete(memo);
          logger.error({ err, budget: a.budget.id }, 'budget soft-limit warning failed');
        });
    });
    return parts.length > 0 ? { [BUDGET_WARNING_HEADER]: parts.join(', ') } : {};
  };
}
