/**
 * Members of an organization (TEN-1): list, change a role, remove, leave, transfer ownership.
 */
import { z } from 'zod';
import { orgScopeOf, userIdOf } from '../../server/principal.ts';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import { isRole } from '../permissions.ts';
import type { Orgs } from '../orgs.ts';
import { memberParams, memberSchema, noContent, orgParams, role } from './schemas.ts';

export function memberRoutes(orgs: Orgs): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/members',
      summary: 'List members and their roles.',
      guard: { kind: 'session' },
      permission: 'members.read',
      rateCategory: 'read',
      schema: { params: orgParams, response: { 200: z.object({ members: z.array(memberSchema) }) } },
      handler: async ({ authority }) => ({ members: await orgs.listMembers(orgScopeOf(authority, isRole).orgId) }),
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/orgs/:org/members/:user',
      summary: 'Change a member\'s role (never above your own; the last owner cannot be demoted). Effective on every node at once.',
      guard: { kind: 'session' },
      permission: 'members.manage',
      rateCategory: 'write',
      schema: { params: memberParams, body: z.strictObject({ role }), response: { 200: memberSchema } },
      handler: async ({ authority, principal, params, body }) => orgs.changeRole(orgScopeOf(authority, isRole).orgId, userIdOf(principal), params.user, body.role),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/orgs/:org/members/:user',
      summary: 'Remove a member (not one above your own role, not the last owner). Effective on every node at once.',
      guard: { kind: 'session' },
      permission: 'members.manage',
      rateCategory: 'write',
      schema: { params: memberParams, response: { 204: noContent } },
      handler: async ({ authority, principal, params, reply }) => {
        await orgs.removeMember(orgScopeOf(authority, isRole).orgId, userIdOf(principal), params.user);
        reply.code(204);
        return null;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/orgs/:org/leave',
      summary: 'Leave an organization (the last owner cannot).',
      guard: { kind: 'session' },
      permission: 'org.read',
      rateCategory: 'write',
      schema: { params: orgParams, body: z.strictObject({}), response: { 204: noContent } },
      handler: async ({ authority, principal, reply }) => {
        const me = userIdOf(principal);
        await orgs.removeMember(orgScopeOf(authority, isRole).orgId, me, me);
        reply.code(204);
        return null;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/orgs/:org/transfer-ownership',
      summary: 'The owner makes another member owner and becomes admin.',
      guard: { kind: 'session' },
      permission: 'org.transfer',
      rateCategory: 'write',
      schema: { params: orgParams, body: z.strictObject({ userId: z.uuid() }), response: { 204: noContent } },
      handler: async ({ authority, principal, body, reply }) => {
        await orgs.transferOwnership(orgScopeOf(authority, isRole).orgId, userIdOf(principal), body.userId);
        reply.code(204);
        return null;
      },
    }),
  ];
}
