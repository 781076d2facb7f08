/**
 * Organizations themselves (TEN-1): create, list the caller's, read, update (name, MFA requirement), delete.
 */
import { z } from 'zod';
import { AppError } from '../../server/errors.ts';
import { orgScopeOf, userIdOf } from '../../server/principal.ts';
import { defineRoute, type Principal, type RouteDef } from '../../server/route.ts';
import { isRole } from '../permissions.ts';
import type { Orgs } from '../orgs.ts';
import { name, noContent, orgParams, orgSchema } from './schemas.ts';

export function orgRoutes(deps: { orgs: Orgs; mfaSatisfied?: ((principal: Principal) => Promise<boolean>) | undefined }): RouteDef[] {
  const { orgs } = deps;
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/orgs',
      summary: 'Create an organization; the caller becomes its owner.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'write',
      schema: { body: z.strictObject({ name }), response: { 201: orgSchema } },
      handler: async ({ body, principal, reply }) => {
        const org = await orgs.create(userIdOf(principal), body.name);
        reply.code(201);
        return org;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs',
      summary: 'The organizations the caller belongs to, with the caller\'s role in each.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.object({ orgs: z.array(orgSchema) }) } },
      handler: async ({ principal }) => ({ orgs: await orgs.listMine(userIdOf(principal)) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org',
      summary: 'Read an organization.',
      guard: { kind: 'session' },
      permission: 'org.read',
      rateCategory: 'read',
      schema: { params: orgParams, response: { 200: orgSchema } },
      handler: async ({ authority }) => {
        const { orgId, role: mine } = orgScopeOf(authority, isRole);
        return orgs.get(orgId, mine);
      },
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/orgs/:org',
      summary: 'Rename an organization and/or require a second factor of its members (`requireMfa`; enabling it needs one yourself).',
      guard: { kind: 'session' },
      permission: 'org.update',
      rateCategory: 'write',
      schema: {
        params: orgParams,
        body: z.strictObject({ name: name.optional(), requireMfa: z.boolean().optional() }).refine((b) => b.name !== undefined || b.requireMfa !== undefined, 'name or requireMfa is required'),
        response: { 200: orgSchema },
      },
      handler: async ({ authority, body, principal }) => {
        const { orgId, role: mine } = orgScopeOf(authority, isRole);
        // Requiring MFA without having it would lock the caller out of their own org.
        if (body.requireMfa === true && !(principal && deps.mfaSatisfied && (await deps.mfaSatisfied(principal)))) throw new AppError('MFA_REQUIRED_BY_ORG');
        return orgs.update(orgId, mine, body);
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/orgs/:org',
      summary: 'Delete an organization with everything in it; its data keys are destroyed (crypto-shredding).',
      guard: { kind: 'session' },
      permission: 'org.delete',
      rateCategory: 'write',
      schema: { params: orgParams, response: { 204: noContent } },
      handler: async ({ authority, reply }) => {
        await orgs.remove(orgScopeOf(authority, isRole).orgId);
        reply.code(204);
        return null;
      },
    }),
  ];
}
