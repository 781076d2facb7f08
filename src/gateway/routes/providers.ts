/** The workspace's own providers (admins): list, create or replace, delete. Vendor keys are write-only. */
import { z } from 'zod';
import { providerBaseUrlSchema, providerIdSchema, modelPatternSchema, PROVIDER_KINDS } from '../../config/gateway.ts';
import { userIdOf, workspaceScopeOf } from '../../server/principal.ts';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import { noContent, wsParams, type GatewayFeatureDeps } from './shared.ts';

const providerParams = z.strictObject({ org: z.uuid(), ws: z.uuid(), provider: providerIdSchema });

const providerViewSchema = z.object({
  name: z.string(),
  kind: z.enum(PROVIDER_KINDS),
  baseUrl: z.string(),
  apiVersion: z.string().nullable(),
  deployments: z.record(z.string(), z.string()).nullable(),
  streamUsage: z.boolean().nullable(),
  models: z.array(z.string()),
  keySet: z.literal(true),
  createdAt: z.string(),
  updatedAt: z.string(),
});

/** The provider routes of the gateway. */
export function providerRoutes(deps: Pick<GatewayFeatureDeps, 'routing'>): RouteDef[] {
  const { routing } = deps;
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/workspaces/:ws/providers',
      summary: 'List the workspace\'s own providers. Vendor keys are write-only: never shown.',
      guard: { kind: 'session' },
      permission: 'providers.manage',
      rateCategory: 'read',
      schema: { params: wsParams, response: { 200: z.object({ providers: z.array(providerViewSchema) }) } },
      handler: async ({ authority }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        return { providers: await routing.listProviders(orgId, wsId) };
      },
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/orgs/:org/workspaces/:ws/providers/:provider',
      summary: 'Create or replace one of the workspace\'s own providers (bring your own key). The key is sealed with the org\'s data key and never shown again.',
      guard: { kind: 'session' },
      permission: 'providers.manage',
      rateCategory: 'write',
      schema: {
        params: providerParams,
        body: z.strictObject({
          kind: z.enum(PROVIDER_KINDS),
          baseUrl: providerBaseUrlSchema,
          apiKey: z.string().max(4096),
          apiVersion: z.string().min(1).max(50).optional(),
          deployments: z.record(z.string().min(1).max(200), z.string().min(1).max(200)).optional(),
          streamUsage: z.boolean().optional(),
          models: z.array(modelPatternSchema).min(1).max(1000),
        }),
        response: { 200: providerViewSchema },
      },
      handler: async ({ authority, principal, params, body }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        return routing.setProvider(orgId, wsId, userIdOf(principal), params.provider, body);
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/orgs/:org/workspaces/:ws/providers/:provider',
      summary: 'Delete one of the workspace\'s own providers and its sealed key.',
      guard: { kind: 'session' },
      permission: 'providers.manage',
      rateCategory: 'write',
      schema: { params: providerParams, response: { 204: noContent } },
      handler: async ({ authority, params, reply }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        await routing.removeProvider(orgId, wsId, params.provider);
        reply.code(204);
        return null;
      },
    }),
  ];
}
