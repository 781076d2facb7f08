/**
 * The input guard as a feature module: a step in every AI call (the gateway's AI_CALL_STEPS hook
 * point), an inspector of every MCP tool result (the MCP gateway's MCP_RESULT_INSPECTORS), the
 * policy and block routes, metrics, and the operator's optional external classifier
 * (`guard.external.*`).
 */
import { AUDIT } from '../audit/index.ts';
import { AI_CALL_STEPS, GATEWAY } from '../gateway/index.ts';
import { MCP, MCP_RESULT_INSPECTORS } from '../mcp/index.ts';
import { TRUST, TRUST_CHECKS } from '../trust/index.ts';
import { defineModule, hook, moduleRef } from '../server/module.ts';
import { httpClassifier, type ExternalClassifier } from './external.ts';
import { createMcpResultInspector } from './mcp-inspector.ts';
import { builtinModel } from './model.ts';
import { createGuardFeature } from './routes.ts';
import { createGuardMetrics, createGuardStep } from './step.ts';
import { createGuardStore, type GuardStore } from './store.ts';
import { guardTrustCheck } from './trust-check.ts';
import { GUARD_AUDIT_ACTIONS } from './audit-actions.ts';

/** What other modules get from ctx.use(GUARD). */
export interface GuardApi {
  store: GuardStore;
}

export const GUARD = moduleRef<GuardApi>('guard');

export const guardModule = defineModule({
  ref: GUARD,
  dependsOn: [AUDIT, GATEWAY, MCP, TRUST],
  auditActions: GUARD_AUDIT_ACTIONS,
  create: async (ctx) => {
    builtinModel(); // load (and check) the shipped weights at start, not on the first call
    const store = createGuardStore({ db: ctx.db, kv: ctx.kv, now: ctx.now });
    await store.start();
    const settings = ctx.config.guard.external;
    const external: ExternalClassifier | undefined =
      (ctx.overrides.guardExternal as ExternalClassifier | undefined) ??
      (settings.url ? httpClassifier({ url: settings.url, timeoutMs: settings.timeoutMs, failMode: settings.failMode, ...(settings.token ? { headers: { authorization: `Bearer ${settings.token}` } } : {}) }) : undefined);
    const metrics = createGuardMetrics();
    const audit = ctx.use(AUDIT);
    const step = createGuardStep({ store, audit, logger: ctx.logger, now: ctx.now, ...(external ? { external } : {}) }, metrics);
    return {
      api: { store },
      feature: createGuardFeature({ store, audit }),
      hooks: [
        hook(AI_CALL_STEPS, step),
        hook(MCP_RESULT_INSPECTORS, createMcpResultInspector({ store, audit, logger: ctx.logger, ...(external ? { external } : {}) }, metrics)),
        hook(TRUST_CHECKS, guardTrustCheck(() => external)),
      ],
      metrics: Object.values(metrics),
      close: () => store.close(),
    };
  },
});
