/**
 * The gateway's routes (GW-1..4).
 *
 * Management, for members of an org (session guard, tenancy's permission matrix):
 * API keys per workspace (editors and above), the workspace's own providers and model routing
 * (admins), and the org's usage (every member).
 *
 * The AI routes, for API keys (apiKey guard with a scope, rate category `ai`): OpenAI-compatible
 * `/v1/chat/completions`, `/v1/embeddings`, `/v1/models` and Anthropic's `/v1/messages`. Their
 * clients are the vendors' SDKs, so every error of these routes (the guard's, rate limits, body
 * and validation errors, refusals here) is rendered in the vendor's shape through the route's
 * `errorFormat`, and the proxy writes upstream failures in the same shape.
 *
 * One file per resource under src/gateway/routes/ (keys, providers, routing, usage, ai).
 */
import type { Feature, SealedColumn } from '../server/route.ts';
import { GATEWAY_ERROR_CODES } from './error-codes.ts';
import { aiRoutes } from './routes/ai.ts';
import { apiKeyRoutes } from './routes/keys.ts';
import { providerRoutes } from './routes/providers.ts';
import { routingRoutes } from './routes/routing.ts';
import type { GatewayFeatureDeps } from './routes/shared.ts';
import { usageRoutes } from './routes/usage.ts';

export type { GatewayFeatureDeps } from './routes/shared.ts';

/** Vendor keys brought by a workspace, sealed with the tenant's data key. */
export const GATEWAY_SEALED_COLUMNS: readonly SealedColumn[] = [{ table: 'provider_credentials', column: 'api_key_sealed', idColumn: 'id', tenantColumn: 'tenant_id' }];

/**
 * The gateway feature: its routes, error codes, audit actions and sealed column.
 * @example const feature = createGatewayFeature({ db, keys, routing, meter, proxy, prices, platform, countMonthlyCall, inflight, logger, now, bodyLimitBytes })
 */
export function createGatewayFeature(deps: GatewayFeatureDeps): Feature {
  return {
    id: 'gateway',
    errorCodes: GATEWAY_ERROR_CODES,
    sealedColumns: GATEWAY_SEALED_COLUMNS,
    routes: [...apiKeyRoutes(deps), ...providerRoutes(deps), ...routingRoutes(deps), ...usageRoutes(deps), ...aiRoutes(deps)],
  };
}
