/**
 * The input guard as a gateway call step (src/gateway/steps.ts, order 100): before every AI call it
 * refuses a temporarily blocked API key or end user, inspects the call's user and tool content,
 * and applies the workspace's policy: flag (audit only), block (400 GUARD_BLOCKED, a strike) or
 * redact (rewrite the body, block if still over the block threshold). Audit events name the rules
 * that fired and the score, never the prompt. Any failure to check refuses the call (503).
 */
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { AuditLog } from '../audit/index.ts';
import type { AiCall, AiCallStep } from '../gateway/index.ts';
import { AppError, registerErrorCodes } from '../server/errors.ts';
import { endUserOf, slotsOf } from './content.ts';
import { GUARD_ERROR_CODES } from './error-codes.ts';
import type { ExternalClassifier } from './external.ts';
import { createGuard, type GuardVerdict } from './guard.ts';
import { builtinModel } from './model.ts';
import type { GuardPolicy } from './policy.ts';
import { redact } from './redact.ts';
import { RULES } from './rules.ts';
import { userSubject, type GuardStore, type Subject } from './store.ts';

// Registered here too (idempotent), so the step's errors can be built before the feature is served.
registerErrorCodes(GUARD_ERROR_CODES);

export interface GuardStepDeps {
  store: GuardStore;
  audit: AuditLog;
  logger: Logger;
  now: () => number;
  external?: ExternalClassifier;
}

/** Prometheus metrics of the guard. */
export function createGuardMetrics() {
  return {
    verdicts: new Counter({ name: 'gatehouse_guard_verdicts_total', help: 'Input guard verdicts on AI calls, by verdict and the workspace policy mode that applied.', labelNames: ['verdict', 'mode'], registers: [] }),
    refusals: new Counter({ name: 'gatehouse_guard_refusals_total', help: 'AI calls the input guard refused, by reason (blocked, temporarily_blocked, unavailable).', labelNames: ['reason'], registers: [] }),
    temporaryBlocks: new Counter({ name: 'gatehouse_guard_temporary_blocks_total', help: 'Temporary blocks started by strikes, by subject kind (key, user).', labelNames: ['kind'], registers: [] }),
  };
}
export type GuardMetrics = ReturnType<typeof createGuardMetrics>;

function unavailable(cause: unknown): AppError {
  return new AppError('GUARD_UNAVAILABLE', undefined, { cause });
}

function auditData(call: AiCall, verdict: GuardVerdict, mode: GuardPolicy['mode']): Record<string, string | number | boolean | null> {
  return { rules: verdict.fired.join(',') || null, score: Math.round(verdict.score * 1000) / 1000, verdict: verdict.action, mode, operation: call.operation, apiKeyId: call.apiKeyId, model: call.model.slice(0, 200) };
}

/** Builds the step. */
export function createGuardStep(deps: GuardStepDeps, metrics: GuardMetrics): AiCallStep {
  const { store, audit, logger, now } = deps;

  async function refuseIfBlocked(call: AiCall, subjects: Subject[]): Promise<void> {
    for (const subject of subjects) {
      let until: number;
      try {
        until = await store.blockedUntil(call.tenantId, call.workspaceId, subject);
      } catch (err) {
        metrics.refusals.inc({ reason: 'unavailable' });
        throw unavailable(err);
      }
      if (until > now()) {
        metrics.refusals.inc({ reason: 'temporarily_blocked' });
        throw new AppError('GUARD_TEMPORARILY_BLOCKED', undefined, { headers: { 'retry-after': String(Math.max(1, Math.ceil((until - now()) / 1000))) } });
      }
    }
  }

  async function strikeAll(call: AiCall, subjects: Subject[], policy: GuardPolicy): Promise<void> {
    for (const subject of subjects) {
      const result = await store.strike(call.tenantId, call.workspaceId, subject, policy.strikes);
      if (result.blockedUntil === null) continue;
      const kind = subject.startsWith('key:') ? 'key' : 'user';
      metrics.temporaryBlocks.inc({ kind });
      await audit.record({ tenantId: call.tenantId, action: 'guard.subject.blocked', target: { type: 'workspace', id: call.workspaceId }, data: { subject, level: result.level, seconds: Math.round((result.blockedUntil - now()) / 1000) } });
    }
  }

  async function refuse(call: AiCall, verdict: GuardVerdict, policy: GuardPolicy, subjects: Subject[]): Promise<never> {
    metrics.refusals.inc({ reason: 'blocked' });
    try {
      await audit.record({ tenantId: call.tenantId, action: 'guard.blocked', target: { type: 'workspace', id: call.workspaceId }, data: auditData(call, verdict, policy.mode) });
      if (policy.strikes.enabled) await strikeAll(call, subjects, policy);
    } catch (err) {
      // The call is refused either way; a strike or audit event that could not be written is logged.
      logger.error({ err, requestId: call.requestId }, 'input guard: recording a block failed');
    }
    throw new AppError('GUARD_BLOCKED');
  }

  /** A flag that cannot be recorded is a failure to check: the call is refused. */
  async function recordOrRefuse(call: AiCall, action: 'guard.flagged' | 'guard.redacted', verdict: GuardVerdict, policy: GuardPolicy): Promise<void> {
    try {
      await audit.record({ tenantId: call.tenantId, action, target: { type: 'workspace', id: call.workspaceId }, data: auditData(call, verdict, policy.mode) });
    } catch (err) {
      metrics.refusals.inc({ reason: 'unavailable' });
      throw unavailable(err);
    }
  }

  return {
    name: 'input-guard',
    order: 100,
    async before(call) {
      let policy: GuardPolicy;
      try {
        policy = await store.loadPolicy(call.tenantId, call.workspaceId);
      } catch (err) {
        metrics.refusals.inc({ reason: 'unavailable' });
        throw unavailable(err);
      }
      if (policy.mode === 'off') return undefined;
      const endUser = endUserOf(call.body);
      const subjects: Subject[] = [`key:${call.apiKeyId}`, ...(endUser ? [userSubject(endUser)] : [])];
      if (policy.strikes.enabled) await refuseIfBlocked(call, subjects);

      const slots = slotsOf(call.format, call.operation, call.body, policy.inspectSystem);
      if (slots.length === 0) return undefined;
      const guard = createGuard({ model: builtinModel(), thresholds: { flag: policy.flagThreshold, block: policy.blockThreshold }, disabledRules: policy.disabledRules });
      const texts = slots.map((s) => s.text);
      const useExternal = deps.external && policy.external && !policy.disabledRules.includes('external');
      let verdict = useExternal && deps.external ? await guard.inspectWithExternal(texts, deps.external) : guard.inspect(texts);
      metrics.verdicts.inc({ verdict: verdict.action, mode: policy.mode });
      if (verdict.action === 'allow') return undefined;

      if (policy.mode === 'redact') {
        const rules = RULES.filter((r) => !policy.disabledRules.some((d) => r.name === d || (d.endsWith('.') && r.name.startsWith(d))));
        for (const slot of slots) {
          const out = redact(slot.text, rules);
          if (out.changed) slot.write(out.text);
        }
        const after = guard.inspect(slotsOf(call.format, call.operation, call.body, policy.inspectSystem).map((s) => s.text));
        if (after.action === 'block') return refuse(call, verdict, policy, subjects);
        verdict = { ...verdict, action: 'flag' };
        await recordOrRefuse(call, 'guard.redacted', verdict, policy);
        return undefined;
      }
      if (policy.mode === 'block' && verdict.action === 'block') return refuse(call, verdict, policy, subjects);
      await recordOrRefuse(call, 'guard.flagged', verdict, policy);
      return undefined;
    },
  };
}
