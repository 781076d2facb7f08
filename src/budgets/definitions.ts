/**
 * Budget definitions: stored per org, changed by its admins (with an audit event in the same
 * transaction), cached per node and evicted on every node through kv pub/sub when they change.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { EvictionPublisher } from '../store/kv/evictions.ts';
import type { Kv } from '../store/kv/types.ts';
import type { BudgetCategory, BudgetPeriod } from './categories.ts';

export const BUDGETS_EVICT_CHANNEL = 'budgets:evict';

export interface Budget {
  id: string;
  orgId: string;
  workspaceId: string | null;
  apiKeyId: string | null;
  category: BudgetCategory;
  period: BudgetPeriod;
  hardLimit: number;
  softLimit: number | null;
  version: number;
  updatedAt: string;
}

export interface BudgetInput {
  workspaceId: string | null;
  apiKeyId: string | null;
  category: BudgetCategory;
  period: BudgetPeriod;
  hardLimit: number;
  softLimit: number | null;
  /** Refuse (409) unless the budget is at this version (0: unless it does not exist yet). */
  ifVersion?: number;
}

interface Row {
  id: string;
  tenant_id: string;
  workspace_id: string | null;
  api_key_id: string | null;
  category: BudgetCategory;
  period: BudgetPeriod;
  hard_limit: string;
  soft_limit: string | null;
  version: number;
  updated_at: Date;
}

const COLUMNS = 'id, tenant_id, workspace_id, api_key_id, category, period, hard_limit::text, soft_limit::text, version, updated_at';

function view(r: Row): Budget {
  return {
    id: r.id,
    orgId: r.tenant_id,
    workspaceId: r.workspace_id,
    apiKeyId: r.api_key_id,
    category: r.category,
    period: r.period,
    hardLimit: Number(r.hard_limit),
    softLimit: r.soft_limit === null ? null : Number(r.soft_limit),
    version: r.version,
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

export interface Definitions {
  /** The org's budgets, from this node's cache when it can be trusted. */
  forOrg(orgId: string): Promise<readonly Budget[]>;
  set(orgId: string, actorId: string, input: BudgetInput): Promise<Budget>;
  remove(orgId: string, id: string): Promise<void>;
  /** True once per budget and period, on one node: this caller sends the soft-limit warning. */
  claimWarning(orgId: string, budgetId: string, periodKey: string): Promise<boolean>;
  dropLocal(orgId: string): void;
  clearLocal(): void;
}

export function createDefinitions(deps: { db: Db; kv: Kv; audit: AuditLog; logger: Logger; now: () => number; cacheTtlMs: number; evictions: EvictionPublisher }): Definitions {
  const { db, kv, audit, now } = deps;
  const cache = new Map<string, { at: number; budgets: readonly Budget[] }>();
  const loading = new Map<string, Promise<readonly Budget[]>>();

  async function load(orgId: string): Promise<readonly Budget[]> {
    const { rows } = await db.withTenant(orgId, (tx) => tx.query<Row>(`select ${COLUMNS} from budgets order by category, period, workspace_id nulls first, api_key_id nulls first`));
    return rows.map(view);
  }

  async function changed(orgId: string): Promise<void> {
    cache.delete(orgId);
    await deps.evictions.publish(BUDGETS_EVICT_CHANNEL, orgId);
  }

  return {
    async forOrg(orgId) {
      const trusted = kv.subscriptionsLive();
      const hit = cache.get(orgId);
      if (trusted && hit && now() - hit.at < deps.cacheTtlMs) return hit.budgets;
      let pending = loading.get(orgId);
      if (!pending) {
        const at = now();
        pending = load(orgId)
          .then((budgets) => {
            // Kept only while evictions are known to arrive, and only if no eviction came meanwhile.
            if (kv.subscriptionsLive() && loading.get(orgId) === pending) cache.set(orgId, { at, budgets });
            return budgets;
          })
          .finally(() => {
            if (loading.get(orgId) === pending) loading.delete(orgId);
          });
        loading.set(orgId, pending);
      }
      return pending;
    },

    async set(orgId, actorId, input) {
      const id = randomUUID();
      // Prepared outside the transaction (sealing may use the database); the target is the budget's
      // scope, category and period, which name it before its row exists.
      const event = await audit.prepare({
        tenantId: orgId,
        action: 'budget.set',
        target: { type: 'budget', id: `${input.workspaceId ?? 'org'}/${input.apiKeyId ?? '-'}/${input.category}/${input.period}` },
        data: { category: input.category, period: input.period, hardLimit: input.hardLimit, softLimit: input.softLimit, workspaceId: input.workspaceId, apiKeyId: input.apiKeyId },
      });
      const budget = await db.withTenant(orgId, async (tx) => {
        if (input.workspaceId !== null) {
          const ws = await tx.query('select 1 from workspaces where id = $1', [input.workspaceId]);
          if (ws.rowCount === 0) throw new AppError('VALIDATION_FAILED', 'body.workspaceId: no such workspace in this organization');
        }
        if (input.apiKeyId !== null) {
          const key = await tx.query('select 1 from api_keys where id = $1 and workspace_id = $2', [input.apiKeyId, input.workspaceId]);
          if (key.rowCount === 0) throw new AppError('VALIDATION_FAILED', 'body.apiKeyId: no such API key in this workspace');
        }
        const { rows } = await tx.query<Row>(
          `insert into budgets (id, tenant_id, workspace_id, api_key_id, category, period, hard_limit, soft_limit, updated_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           on conflict (tenant_id, coalesce(workspace_id, '00000000-0000-0000-0000-000000000000'), coalesce(api_key_id, ''), category, period)
           do update set hard_limit = excluded.hard_limit, soft_limit = excluded.soft_limit, updated_by = excluded.updated_by,
             version = budgets.version + 1, updated_at = now()
             where $10::int is null or budgets.version = $10
           returning ${COLUMNS}`,
          [id, orgId, input.workspaceId, input.apiKeyId, input.category, input.period, input.hardLimit, input.softLimit, actorId, input.ifVersion ?? null],
        );
        const row = rows[0];
        if (!row) throw new AppError('BUDGET_VERSION_CONFLICT');
        // ifVersion 0: create only; any other version: the budget must exist at it.
        if (input.ifVersion !== undefined && input.ifVersion !== 0 && row.id === id) throw new AppError('BUDGET_VERSION_CONFLICT');
        await audit.append(tx, event);
        return view(row);
      });
      await changed(orgId);
      return budget;
    },

    async remove(orgId, id) {
      const event = await audit.prepare({ tenantId: orgId, action: 'budget.deleted', target: { type: 'budget', id } });
      const removed = await db.withTenant(orgId, async (tx) => {
        const { rowCount } = await tx.query('delete from budgets where id = $1', [id]);
        if (rowCount > 0) await audit.append(tx, event);
        return rowCount;
      });
      if (removed === 0) throw new AppError('NOT_FOUND');
      await changed(orgId);
    },

    async claimWarning(orgId, budgetId, periodKey) {
      const { rowCount } = await db.withTenant(orgId, (tx) =>
        tx.query('update budgets set warned_period = $2 where id = $1 and warned_period is distinct from $2', [budgetId, periodKey]),
      );
      return rowCount > 0;
    },

    dropLocal(orgId) {
      cache.delete(orgId);
      loading.delete(orgId);
    },

    clearLocal() {
      cache.clear();
      loading.clear();
    },
  };
}
