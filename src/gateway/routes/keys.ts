/** API keys per workspace (editors and above): create, list, revoke. */
import { z } from 'zod';
import { AppError } from '../../server/errors.ts';
import { userIdOf, workspaceScopeOf } from '../../server/principal.ts';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import { API_KEY_SCOPES, DEFAULT_API_KEY_SCOPES } from '../keys.ts';
import { noContent, wsParams, type GatewayFeatureDeps } from './shared.ts';

const keyParams = z.strictObject({ org: z.uuid(), ws: z.uuid(), key: z.string().regex(/^[0-9A-Za-z]{16}$/) });

const apiKeySchema = z.object({
  id: z.string(),
  workspaceId: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  expiresAt: z.string().nullable(),
  monthlyLimit: z.number().nullable(),
  rateLimitPerMinute: z.number().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});

/** The API key routes of the gateway. */
export function apiKeyRoutes(deps: Pick<GatewayFeatureDeps, 'keys' | 'now'>): RouteDef[] {
  const { keys, now } = deps;
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/orgs/:org/workspaces/:ws/api-keys',
      summary: 'Create an API key for the workspace. The key is in this response only; it is stored as a hash.',
      guard: { kind: 'session' },
      permission: 'apikeys.manage',
      rateCategory: 'write',
      schema: {
        params: wsParams,
        body: z.strictObject({
          name: z.string().trim().min(1).max(100),
          scopes: z
            .array(z.enum(API_KEY_SCOPES))
            .min(1)
            .max(API_KEY_SCOPES.length)
            .refine((s) => new Set(s).size === s.length, 'scopes must not repeat')
            .optional(),
          expiresAt: z.iso.datetime({ offset: true }).optional(),
          monthlyLimit: z.number().int().min(1).max(1_000_000_000).optional(),
          rateLimitPerMinute: z.number().int().min(1).max(1_000_000).optional(),
        }),
        response: { 201: z.object({ key: z.string(), apiKey: apiKeySchema }) },
      },
      handler: async ({ authority, principal, body, reply }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        const expiresAt = body.expiresAt === undefined ? null : new Date(body.expiresAt);
        if (expiresAt !== null && expiresAt.getTime() <= now()) throw new AppError('VALIDATION_FAILED', 'body.expiresAt: must be in the future');
        const created = await keys.create(orgId, wsId, userIdOf(principal), {
          name: body.name,
          scopes: body.scopes ?? DEFAULT_API_KEY_SCOPES,
          expiresAt,
          monthlyLimit: body.monthlyLimit ?? null,
          rateLimitPerMinute: body.rateLimitPerMinute ?? null,
        });
        reply.code(201);
        return created;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/workspaces/:ws/api-keys',
      summary: 'List the workspace\'s API keys (revoked ones included), without their secrets.',
      guard: { kind: 'session' },
      permission: 'apikeys.read',
      rateCategory: 'read',
      schema: { params: wsParams, response: { 200: z.object({ apiKeys: z.array(apiKeySchema) }) } },
      handler: async ({ authority }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        return { apiKeys: await keys.list(orgId, wsId) };
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/orgs/:org/workspaces/:ws/api-keys/:key',
      summary: 'Revoke an API key. Refused on every node within a second.',
      guard: { kind: 'session' },
      permission: 'apikeys.manage',
      rateCategory: 'write',
      schema: { params: keyParams, response: { 204: noContent } },
      handler: async ({ authority, params, reply }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        await keys.revoke(orgId, wsId, params.key);
        reply.code(204);
        return null;
      },
    }),
  ];
}
