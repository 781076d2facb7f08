/**
 * The input guard as a feature module: a step in every AI call (the gateway's AI_CALL_STEPS hook
 * point), an inspector of every MCP tool result (the MCP gateway's MCP_RESULT_INSPECTORS), the
 * policy and block routes, metrics, and the operator's optional external classifier
 * (`guard.external.*`).
 */
import { AUDIT } from '../audit/index.ts';
import type { Config } from '../config/schema.ts';
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

/** The HTTP classifier guard.external.* describes, if a URL is set. */
function classifierOf(settings: Config['guard']['external']): ExternalClassifier | undefined {
  if (!settings.url) return undefined;
  return httpClassifier({ url: settings.url, timeoutMs: settings.timeoutMs, failMode: settings.failMode, ...(settings.token ? { headers: { authorization: `Bearer ${settings.token}` } } : {}) });
}

export const guardModule = defineModule({
  ref: GUARD,
  dependsOn: [AUDIT, GATEWAY, MCP, TRUST],
  auditActions: GUARD_AUDIT_ACTIONS,
  create: async (ctx) => {
    builtinModel(); // load (and check) the shipped weights at start, not on the first call
    const store = createGuardStore({ db: ctx.db, kv: ctx.kv, now: ctx.now });
    await store.start();
    // guard.external.* reloads without a restart: the classifier is rebuilt when its settings change,
    // and each call reads the one current when it starts.
    const override = ctx.overrides.guardExternal as ExternalClassifier | undefined;
    let built: { settings: Config['guard']['external'] | undefined; key: string; external: ExternalClassifier | undefined } = { settings: undefined, key: '', external: undefined };
    const externalNow = (): ExternalClassifier | undefined => {
      if (override) return override;
      const settings = ctx.live.current().guard.external;
      if (settings === built.settings) return built.external;
      const key = JSON.stringify(settings);
      if (key !== built.key) built = { settings, key, external: classifierOf(settings) };
      else built.settings = settings;
      return built.external;
    };
    externalNow();
    const metrics = createGuardMetrics();
    const audit = ctx.use(AUDIT);
    const step = createGuardStep(
      {
        store,
        audit,
        logger: ctx.logger,
        now: ctx.now,
        get external() {
          return externalNow();
        },
      },
      metrics,
    );
    const inspector = createMcpResultInspector(
      {
        store,
        audit,
        logger: ctx.logger,
        get external() {
          return externalNow();
        },
      },
      metrics,
    );
    return {
      api: { store },
      feature: createGuardFeature({ store, audit }),
      hooks: [
        hook(AI_CALL_STEPS, step),
        hook(MCP_RESULT_INSPECTORS, inspector),
        hook(TRUST_CHECKS, guardTrustCheck(externalNow)),
      ],
      metrics: Object.values(metrics),
      close: () => store.close(),
    };
  },
});
