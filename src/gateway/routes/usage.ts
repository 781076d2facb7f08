/** The org's usage report (every member). */
import { z } from 'zod';
import { orgIdOf } from '../../server/principal.ts';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import { monthOf, readUsageReport } from '../metering.ts';
import { orgParams, type GatewayFeatureDeps } from './shared.ts';

const totalsSchema = {
  requests: z.number(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  costMicroUsd: z.number(),
  estimatedRequests: z.number(),
  failedRequests: z.number(),
};
const usageSchema = z.object({
  month: z.string(),
  from: z.string(),
  to: z.string(),
  org: z.object(totalsSchema),
  workspaces: z.array(z.object({ workspaceId: z.string(), ...totalsSchema })),
  keys: z.array(z.object({ keyId: z.string(), workspaceId: z.string(), name: z.string().nullable(), ...totalsSchema })),
});

/** The usage route of the gateway. */
export function usageRoutes(deps: Pick<GatewayFeatureDeps, 'db' | 'meter' | 'now'>): RouteDef[] {
  const { meter, now } = deps;
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/usage',
      summary: 'The org\'s AI usage in a month (UTC): requests, tokens and cost per API key, per workspace and in total.',
      guard: { kind: 'session' },
      permission: 'usage.read',
      rateCategory: 'read',
      schema: {
        params: orgParams,
        querystring: z.strictObject({ month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'YYYY-MM').optional() }),
        response: { 200: usageSchema },
      },
      handler: async ({ authority, query }) => {
        // This node's buffered records first, so a caller sees its own calls at once.
        await meter.flush();
        return readUsageReport(deps.db, orgIdOf(authority), query.month ?? monthOf(now()));
      },
    }),
  ];
}
