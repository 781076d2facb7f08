/** The workspace's model routing: allowed models and aliases with their fallback chains. */
import { z } from 'zod';
import { modelPatternSchema, providerIdSchema } from '../../config/gateway.ts';
import { workspaceScopeOf } from '../../server/principal.ts';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import { wsParams, type GatewayFeatureDeps } from './shared.ts';

const aliasSchema = z.strictObject({
  name: modelPatternSchema.refine((v) => !v.includes('*'), 'an alias is a name, not a pattern'),
  targets: z
    .array(z.strictObject({ model: modelPatternSchema.refine((v) => !v.includes('*'), 'a target is a model name, not a pattern'), provider: providerIdSchema.nullable().default(null) }))
    .min(1)
    .max(10),
});
const settingsSchema = z.object({
  allowedModels: z.array(z.string()).nullable(),
  aliases: z.array(z.object({ name: z.string(), targets: z.array(z.object({ model: z.string(), provider: z.string().nullable() })) })),
});

/** The model routing routes of the gateway. */
export function routingRoutes(deps: Pick<GatewayFeatureDeps, 'routing'>): RouteDef[] {
  const { routing } = deps;
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/workspaces/:ws/models',
      summary: 'The workspace\'s model routing: allowed models (null: all its providers serve) and aliases with their fallback chains.',
      guard: { kind: 'session' },
      permission: 'workspaces.read',
      rateCategory: 'read',
      schema: { params: wsParams, response: { 200: settingsSchema } },
      handler: async ({ authority }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        return routing.getSettings(orgId, wsId);
      },
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/orgs/:org/workspaces/:ws/models',
      summary: 'Replace the workspace\'s model routing. Applies to the next call on every node.',
      guard: { kind: 'session' },
      permission: 'providers.manage',
      rateCategory: 'write',
      schema: {
        params: wsParams,
        body: z.strictObject({
          allowedModels: z.array(modelPatternSchema).max(1000).nullable().default(null),
          aliases: z
            .array(aliasSchema)
            .max(100)
            .refine((a) => new Set(a.map((x) => x.name)).size === a.length, 'alias names must not repeat')
            .default([]),
        }),
        response: { 200: settingsSchema },
      },
      handler: async ({ authority, body }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        return routing.setSettings(orgId, wsId, body);
      },
    }),
  ];
}
