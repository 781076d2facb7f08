/**
 * Central anti-abuse budgets (ABUSE-2) as a feature module: the definitions and their API, the
 * engine (reserve before, settle after; src/budgets/engine.ts), the AI call step that meters every
 * gateway call (order 200, after the input guard), the MCP call step (one `tool_calls` per tool
 * call; src/budgets/mcp-step.ts), the consume API for the app's own files and
 * messages, the sweep of expired reservations, and Prometheus metrics.
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { AUDIT } from '../audit/index.ts';
import { AI_CALL_STEPS, estimateRequestInputTokens, GATEWAY, type AiCall, type AiCallOutcome, type AiCallStep, type Gateway } from '../gateway/index.ts';
import { IDENTITY, type MailQueue } from '../identity/index.ts';
import { MCP, MCP_CALL_STEPS } from '../mcp/index.ts';
import { TRUST, TRUST_CHECKS } from '../trust/index.ts';
import type { LiveConfig } from '../config/live.ts';
import type { Config } from '../config/schema.ts';
import { registerErrorCodes } from '../server/errors.ts';
import { defineModule, hook, moduleRef } from '../server/module.ts';
import type { Db } from '../store/db-types.ts';
import { createEvictionPublisher } from '../store/kv/evictions.ts';
import type { Kv } from '../store/kv/types.ts';
import { isUuid, TENANCY_EVICT_CHANNEL } from '../tenancy/index.ts';
import { BUDGET_ERROR_CODES, unitOf } from './categories.ts';
import { BUDGETS_EVICT_CHANNEL, createDefinitions, type Budget, type Definitions } from './definitions.ts';
import { createBudgetEngine, createBudgetMetrics, type BudgetEngine, type BudgetMetrics } from './engine.ts';
import { createLedger, type Amounts, type Ledger } from './ledger.ts';
import { createMcpBudgetStep } from './mcp-step.ts';
import { budgetsTrustCheck } from './trust-check.ts';
import { createBudgetsFeature } from './routes.ts';
import { BUDGET_AUDIT_ACTIONS } from './audit-actions.ts';

export { BUDGET_CATEGORIES, BUDGET_PERIODS, type BudgetCategory, type BudgetPeriod } from './categories.ts';
export { BUDGET_WARNING_HEADER, type Reservation, type ReserveRequest } from './engine.ts';
export type { Budget } from './definitions.ts';

registerErrorCodes(BUDGET_ERROR_CODES);

export interface Budgets {
  definitions: Definitions;
  engine: BudgetEngine;
  ledger: Ledger;
  metrics: BudgetMetrics;
  /** The AI call step the gateway runs (order 200). */
  step: AiCallStep;
  close: () => Promise<void>;
}

/** The worst case of an AI call: prompt tokens counted here plus the output it may produce, and its price. */
export function worstCaseOf(call: Pick<AiCall, 'operation' | 'body' | 'model'>, gateway: Pick<Gateway, 'prices'>, defaultMaxTokens: number): Amounts {
  const input = estimateRequestInputTokens(call.body);
  if (call.operation === 'embeddings') return { embedding_tokens: input, ai_cost: gateway.prices.costOf(call.model, { inputTokens: input, outputTokens: 0 }) ?? 0 };
  const asked = call.body.max_completion_tokens ?? call.body.max_tokens;
  const output = typeof asked === 'number' && Number.isSafeInteger(asked) && asked >= 0 ? asked : defaultMaxTokens;
  let cost: number;
  try {
    cost = gateway.prices.costOf(call.model, { inputTokens: input, outputTokens: output }) ?? 0;
  } catch {
    // Beyond the safe range: larger than any limit, so the reservation is refused.
    cost = Number.MAX_SAFE_INTEGER;
  }
  return { ai_tokens: input + output, ai_cost: cost };
}

/** What an AI call actually used, in the categories its worst case named. */
export function actualOf(call: Pick<AiCall, 'operation'>, outcome: AiCallOutcome): Amounts {
  const tokens = outcome.usage.inputTokens + outcome.usage.outputTokens;
  const cost = outcome.costMicroUsd ?? 0;
  return call.operation === 'embeddings' ? { embedding_tokens: tokens, ai_cost: cost } : { ai_tokens: tokens, ai_cost: cost };
}

export async function createBudgets(deps: { config: Config; live?: LiveConfig; db: Db; kv: Kv; audit: AuditLog; gateway: Pick<Gateway, 'prices'>; mailer: Pick<MailQueue, 'send'>; logger: Logger; now: () => number }): Promise<Budgets> {
  const { config, db, kv, audit, gateway, mailer, logger, now } = deps;
  // budgets.onStoreError, defaultMaxTokens, reservationTtlSeconds and definitionCacheSeconds reload
  // without a restart: read per call from the live configuration (sweepSeconds needs a restart).
  const settingsNow = (): Config['budgets'] => (deps.live?.current() ?? config).budgets;
  const settings = config.budgets;
  const evictions = createEvictionPublisher({ kv, logger, now, giveUpAfterMs: settings.definitionCacheSeconds * 1000 });
  const definitions = createDefinitions({
    db,
    kv,
    audit,
    logger,
    now,
    get cacheTtlMs() {
      return settingsNow().definitionCacheSeconds * 1000;
    },
    evictions,
  });
  const ledger = createLedger(db);
  const metrics = createBudgetMetrics();

  async function adminEmails(orgId: string): Promise<string[]> {
    const { rows } = await db.withTenant(orgId, (tx) => tx.query<{ email: string }>("select u.email from memberships m join users u on u.id = m.user_id where m.role in ('owner', 'admin') and u.status = 'active'"));
    return rows.map((r) => r.email);
  }

  const engine = createBudgetEngine(
    {
      kv,
      definitions,
      ledger,
      logger,
      now,
      get onStoreError() {
        return settingsNow().onStoreError;
      },
      get reservationTtlMs() {
        return settingsNow().reservationTtlSeconds * 1000;
      },
      onSoftLimit: async (budget: Budget, used: number, periodKey: string) => {
        await audit.record({ tenantId: budget.orgId, action: 'budget.soft_limit', target: { type: 'budget', id: budget.id }, actor: { type: 'system', id: null }, personal: false, data: { category: budget.category, period: periodKey, used, softLimit: budget.softLimit, hardLimit: budget.hardLimit } });
        const scope = budget.apiKeyId ? `API key ${budget.apiKeyId}` : budget.workspaceId ? `workspace ${budget.workspaceId}` : 'the organization';
        for (const to of await adminEmails(budget.orgId)) {
          await mailer.send({
            to,
            kind: 'notice',
            subject: `Gatehouse: a ${budget.category} budget passed its soft limit`,
            text: `The ${budget.period === 'day' ? 'daily' : 'monthly'} ${budget.category} budget of ${scope} (${unitOf(budget.category)}) has used ${used} of ${budget.hardLimit} in ${periodKey} (UTC), past its soft limit of ${budget.softLimit ?? 0}. Calls are refused once the hard limit would be passed.\n`,
          });
        }
      },
      onRefusal: async (budget: Budget, periodKey: string) => {
        await audit.record({ tenantId: budget.orgId, action: 'budget.exceeded', target: { type: 'budget', id: budget.id }, actor: { type: 'system', id: null }, personal: false, data: { category: budget.category, period: periodKey, hardLimit: budget.hardLimit } });
      },
    },
    metrics,
  );

  const step: AiCallStep = {
    name: 'budgets',
    order: 200,
    before: async (call) => {
      const reservation = await engine.reserve({ orgId: call.tenantId, workspaceId: call.workspaceId, apiKeyId: call.apiKeyId, amounts: worstCaseOf(call, gateway, settingsNow().defaultMaxTokens), requestId: call.requestId });
      return { headers: reservation.headers, settle: (outcome) => reservation.settle(outcome ? actualOf(call, outcome) : undefined) };
    },
  };

  // Every node drops an org's definitions when they change, and everything after a gap in the subscription.
  const stopResync = kv.onSubscriptionsLive((live) => {
    if (live) definitions.clearLocal();
  });
  const unsubscribers: (() => Promise<void>)[] = [];
  const onOrg = (orgId: string): void => {
    if (isUuid(orgId)) definitions.dropLocal(orgId);
  };
  unsubscribers.push(await kv.subscribe(BUDGETS_EVICT_CHANNEL, onOrg));
  unsubscribers.push(await kv.subscribe(TENANCY_EVICT_CHANNEL, onOrg));

  let sweeping: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    sweeping = engine.sweep().catch((err: unknown) => logger.error({ err }, 'budget reservation sweep failed'));
  }, settings.sweepSeconds * 1000);
  timer.unref();

  return {
    definitions,
    engine,
    ledger,
    metrics,
    step,
    close: async () => {
      clearInterval(timer);
      await sweeping;
      stopResync();
      evictions.close();
      for (const unsubscribe of unsubscribers) await unsubscribe().catch(() => undefined);
      await ledger.drain();
    },
  };
}

export const BUDGETS = moduleRef<Budgets>('budgets');

/** Budgets as a module: fills the gateway's AI call steps and the MCP gateway's call steps; mails admins through identity's queue. */
export const budgetsModule = defineModule({
  ref: BUDGETS,
  dependsOn: [AUDIT, GATEWAY, IDENTITY, MCP, TRUST],
  auditActions: BUDGET_AUDIT_ACTIONS,
  create: async (ctx) => {
    const budgets = await createBudgets({ config: ctx.config, live: ctx.live, db: ctx.db, kv: ctx.kv, audit: ctx.use(AUDIT), gateway: ctx.use(GATEWAY), mailer: ctx.use(IDENTITY).mailer, logger: ctx.logger, now: ctx.now });
    return {
      api: budgets,
      feature: createBudgetsFeature({ definitions: budgets.definitions, engine: budgets.engine }),
      hooks: [hook(AI_CALL_STEPS, budgets.step), hook(MCP_CALL_STEPS, createMcpBudgetStep(budgets.engine)), hook(TRUST_CHECKS, budgetsTrustCheck)],
      metrics: budgets.metrics.all,
      close: budgets.close,
    };
  },
});
