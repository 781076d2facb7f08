/**
 * The AI gateway (GW-1..4) as a module: createGateway (src/gateway/create.ts) builds it from the
 * configuration; other features add steps around every AI call through AI_CALL_STEPS.
 */
import { AUDIT } from '../audit/index.ts';
import { defineModule, hookPoint, moduleRef } from '../server/module.ts';
import { createGateway, type Gateway } from './create.ts';
import { GATEWAY_SEALED_COLUMNS } from './routes.ts';
import { orderSteps, type AiCallStep } from './steps.ts';
import type { ApiCredentialVerifier } from './credentials.ts';
import { GATEWAY_AUDIT_ACTIONS } from './audit-actions.ts';

export { createGateway, type Gateway, type GatewayDeps } from './create.ts';

export const GATEWAY = moduleRef<Gateway>('gateway');
/** Steps other features run around every AI call (src/gateway/steps.ts): the input guard, budgets. */
export const AI_CALL_STEPS = hookPoint<AiCallStep>('gateway.aiCallSteps');
export type { AiCall, AiCallOutcome, AiCallStep, AiCallStepResult, AiOperation } from './steps.ts';
export { estimateRequestInputTokens } from './usage.ts';
/**
 * Verifiers of credentials derived from API keys (src/gateway/credentials.ts): a client token is
 * accepted wherever an API key is, checked against its parent key's current state.
 */
export const API_CREDENTIAL_VERIFIERS = hookPoint<ApiCredentialVerifier>('gateway.apiCredentialVerifiers');
export type { ApiCredentialVerifier, DelegatedCredential } from './credentials.ts';
export { API_KEY_SCOPES, verifiedKeyOf, type RequestKey } from './keys.ts';
export { parseApiKey } from './api-key-format.ts';
export { GatewayError } from './errors.ts';
export { createTtlCache, type TtlCache } from './cache.ts';
export { modelPatternSchema } from '../config/gateway.ts';

/** The AI gateway as a module. */
export const gatewayModule = defineModule({
  ref: GATEWAY,
  dependsOn: [AUDIT],
  auditActions: GATEWAY_AUDIT_ACTIONS,
  sealedColumns: GATEWAY_SEALED_COLUMNS,
  create: async (ctx) => {
    // The steps are complete once every module was created, before the first request: read once then.
    let steps: readonly AiCallStep[] | undefined;
    let verifiers: readonly ApiCredentialVerifier[] | undefined;
    const gateway = await createGateway({
      config: ctx.config,
      live: ctx.live,
      db: ctx.db,
      kv: ctx.kv,
      keyring: ctx.keyring,
      audit: ctx.use(AUDIT),
      logger: ctx.logger,
      now: ctx.now,
      callSteps: () => (steps ??= orderSteps(ctx.hooks.list(AI_CALL_STEPS))),
      credentialVerifiers: () => (verifiers ??= ctx.hooks.list(API_CREDENTIAL_VERIFIERS)),
    });
    return {
      api: gateway,
      feature: gateway.feature,
      verifiers: gateway.verifiers,
      metrics: gateway.metrics,
      stop: gateway.stopCalls,
      close: gateway.close,
    };
  },
});
