/**
 * Invitations (TEN-1): create (emailed), list, revoke, accept with the emailed token.
 */
import { z } from 'zod';
import { orgScopeOf, userIdOf } from '../../server/principal.ts';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import { isRole } from '../permissions.ts';
import type { Invitations } from '../invitations.ts';
import { invitationParams, invitationSchema, noContent, orgParams, role } from './schemas.ts';

export function invitationRoutes(invitations: Invitations): RouteDef[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/orgs/:org/invitations',
      summary: 'Invite an email address with a role (not above your own); the invitation is emailed and expires.',
      guard: { kind: 'session' },
      permission: 'invitations.manage',
      rateCategory: 'write',
      schema: { params: orgParams, body: z.strictObject({ email: z.string().min(3).max(320), role }), response: { 201: invitationSchema } },
      handler: async ({ authority, principal, body, reply }) => {
        const { orgId, role: mine } = orgScopeOf(authority, isRole);
        const invitation = await invitations.create(orgId, userIdOf(principal), mine, body.email, body.role);
        reply.code(201);
        return invitation;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/invitations',
      summary: 'List invitations (newest first).',
      guard: { kind: 'session' },
      permission: 'invitations.manage',
      rateCategory: 'read',
      schema: { params: orgParams, response: { 200: z.object({ invitations: z.array(invitationSchema) }) } },
      handler: async ({ authority }) => ({ invitations: await invitations.list(orgScopeOf(authority, isRole).orgId) }),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/orgs/:org/invitations/:invitation',
      summary: 'Revoke a pending invitation.',
      guard: { kind: 'session' },
      permission: 'invitations.manage',
      rateCategory: 'write',
      schema: { params: invitationParams, response: { 204: noContent } },
      handler: async ({ authority, params, reply }) => {
        await invitations.revoke(orgScopeOf(authority, isRole).orgId, params.invitation);
        reply.code(204);
        return null;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/invitations/accept',
      summary: 'Accept an invitation with the emailed token, signed in as the invited (verified) address.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'auth',
      schema: { body: z.strictObject({ token: z.string().min(10).max(200) }), response: { 200: z.object({ org: z.object({ id: z.string(), name: z.string(), role }) }) } },
      handler: async ({ principal, body }) => {
        const accepted = await invitations.accept(userIdOf(principal), body.token);
        return { org: { id: accepted.orgId, name: accepted.name, role: accepted.role } };
      },
    }),
  ];
}
