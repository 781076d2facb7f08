/**
 * The organizations API (TEN-1). Each tenant route declares the permission it needs; the
 * authorizer (authority.ts) resolves `:org` (and `:ws`), checks current membership, and 404s
 * callers who are not members before the handler runs inside that tenant's context.
 *
 * size-exception: createTenancyFeature is the tenancy route table (declarative route definitions);
 * split into one file per resource like identity/routes/ pending (issue 17).
 */
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { defineRoute, type Authority, type Feature, type Principal } from '../server/route.ts';
import { TENANCY_ERROR_CODES } from './errors.ts';
import type { Invitations } from './invitations.ts';
import type { Orgs } from './orgs.ts';
import { ROLES, isRole, type Role } from './permissions.ts';
import type { Workspaces } from './workspaces.ts';

const role = z.enum(ROLES);
const name = z.string().trim().min(1).max(100);
const orgParams = z.strictObject({ org: z.uuid() });
const memberParams = z.strictObject({ org: z.uuid(), user: z.uuid() });
const wsParams = z.strictObject({ org: z.uuid(), ws: z.uuid() });
const wsMemberParams = z.strictObject({ org: z.uuid(), ws: z.uuid(), user: z.uuid() });
const invitationParams = z.strictObject({ org: z.uuid(), invitation: z.uuid() });

const orgSchema = z.object({ id: z.string(), name: z.string(), role, requireMfa: z.boolean(), createdAt: z.string(), updatedAt: z.string() });
const memberSchema = z.object({ userId: z.string(), email: z.string(), role, joinedAt: z.string() });
const workspaceSchema = z.object({ id: z.string(), name: z.string(), createdAt: z.string(), updatedAt: z.string() });
const wsMemberSchema = z.object({ userId: z.string(), email: z.string(), orgRole: role, workspaceRole: role.nullable(), effectiveRole: role });
const invitationSchema = z.object({
  id: z.string(),
  email: z.string(),
  role,
  status: z.enum(['pending', 'accepted', 'revoked', 'expired']),
  invitedBy: z.string(),
  expiresAt: z.string(),
  createdAt: z.string(),
});
const noContent = z.null();

function userOf(principal: Principal | undefined): string {
  if (!principal || principal.kind !== 'user') throw new AppError('UNAUTHENTICATED');
  return principal.id;
}

function scopeOf(authority: Authority | undefined): { orgId: string; role: Role } {
  // The server sets authority for every route that declares a permission; its absence is a wiring bug.
  if (!authority?.tenantId || !isRole(authority.role)) throw new Error('tenant route ran without an authority');
  return { orgId: authority.tenantId, role: authority.role };
}

export function createTenancyFeature(deps: { orgs: Orgs; workspaces: Workspaces; invitations: Invitations; mfaSatisfied?: ((principal: Principal) => Promise<boolean>) | undefined }): Feature {
  const { orgs, workspaces, invitations } = deps;
  return {
    id: 'orgs',
    errorCodes: TENANCY_ERROR_CODES,
    routes: [
      defineRoute({
        method: 'POST',
        url: '/v1/orgs',
        summary: 'Create an organization; the caller becomes its owner.',
        guard: { kind: 'session' },
        permission: null,
        rateCategory: 'write',
        schema: { body: z.strictObject({ name }), response: { 201: orgSchema } },
        handler: async ({ body, principal, reply }) => {
          const org = await orgs.create(userOf(principal), body.name);
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
        handler: async ({ principal }) => ({ orgs: await orgs.listMine(userOf(principal)) }),
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
          const { orgId, role: mine } = scopeOf(authority);
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
          const { orgId, role: mine } = scopeOf(authority);
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
          await orgs.remove(scopeOf(authority).orgId);
          reply.code(204);
          return null;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/members',
        summary: 'List members and their roles.',
        guard: { kind: 'session' },
        permission: 'members.read',
        rateCategory: 'read',
        schema: { params: orgParams, response: { 200: z.object({ members: z.array(memberSchema) }) } },
        handler: async ({ authority }) => ({ members: await orgs.listMembers(scopeOf(authority).orgId) }),
      }),
      defineRoute({
        method: 'PATCH',
        url: '/v1/orgs/:org/members/:user',
        summary: 'Change a member\'s role (never above your own; the last owner cannot be demoted). Effective on every node at once.',
        guard: { kind: 'session' },
        permission: 'members.manage',
        rateCategory: 'write',
        schema: { params: memberParams, body: z.strictObject({ role }), response: { 200: memberSchema } },
        handler: async ({ authority, principal, params, body }) => orgs.changeRole(scopeOf(authority).orgId, userOf(principal), params.user, body.role),
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
          await orgs.removeMember(scopeOf(authority).orgId, userOf(principal), params.user);
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
          const me = userOf(principal);
          await orgs.removeMember(scopeOf(authority).orgId, me, me);
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
          await orgs.transferOwnership(scopeOf(authority).orgId, userOf(principal), body.userId);
          reply.code(204);
          return null;
        },
      }),
      defineRoute({
        method: 'POST',
        url: '/v1/orgs/:org/invitations',
        summary: 'Invite an email address with a role (not above your own); the invitation is emailed and expires.',
        guard: { kind: 'session' },
        permission: 'invitations.manage',
        rateCategory: 'write',
        schema: { params: orgParams, body: z.strictObject({ email: z.string().min(3).max(320), role }), response: { 201: invitationSchema } },
        handler: async ({ authority, principal, body, reply }) => {
          const { orgId, role: mine } = scopeOf(authority);
          const invitation = await invitations.create(orgId, userOf(principal), mine, body.email, body.role);
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
        handler: async ({ authority }) => ({ invitations: await invitations.list(scopeOf(authority).orgId) }),
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
          await invitations.revoke(scopeOf(authority).orgId, params.invitation);
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
          const accepted = await invitations.accept(userOf(principal), body.token);
          return { org: { id: accepted.orgId, name: accepted.name, role: accepted.role } };
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/workspaces',
        summary: 'List workspaces.',
        guard: { kind: 'session' },
        permission: 'workspaces.read',
        rateCategory: 'read',
        schema: { params: orgParams, response: { 200: z.object({ workspaces: z.array(workspaceSchema) }) } },
        handler: async ({ authority }) => ({ workspaces: await workspaces.list(scopeOf(authority).orgId) }),
      }),
      defineRoute({
        method: 'POST',
        url: '/v1/orgs/:org/workspaces',
        summary: 'Create a workspace.',
        guard: { kind: 'session' },
        permission: 'workspaces.create',
        rateCategory: 'write',
        schema: { params: orgParams, body: z.strictObject({ name }), response: { 201: workspaceSchema } },
        handler: async ({ authority, body, reply }) => {
          const ws = await workspaces.create(scopeOf(authority).orgId, body.name);
          reply.code(201);
          return ws;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/workspaces/:ws',
        summary: 'Read a workspace.',
        guard: { kind: 'session' },
        permission: 'workspaces.read',
        rateCategory: 'read',
        schema: { params: wsParams, response: { 200: workspaceSchema } },
        handler: async ({ authority, params }) => workspaces.get(scopeOf(authority).orgId, params.ws),
      }),
      defineRoute({
        method: 'PATCH',
        url: '/v1/orgs/:org/workspaces/:ws',
        summary: 'Rename a workspace.',
        guard: { kind: 'session' },
        permission: 'workspaces.update',
        rateCategory: 'write',
        schema: { params: wsParams, body: z.strictObject({ name }), response: { 200: workspaceSchema } },
        handler: async ({ authority, params, body }) => workspaces.rename(scopeOf(authority).orgId, params.ws, body.name),
      }),
      defineRoute({
        method: 'DELETE',
        url: '/v1/orgs/:org/workspaces/:ws',
        summary: 'Delete a workspace and everything in it.',
        guard: { kind: 'session' },
        permission: 'workspaces.delete',
        rateCategory: 'write',
        schema: { params: wsParams, response: { 204: noContent } },
        handler: async ({ authority, params, reply }) => {
          await workspaces.remove(scopeOf(authority).orgId, params.ws);
          reply.code(204);
          return null;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/workspaces/:ws/members',
        summary: 'Members with their org role, workspace role (a narrowing, or null) and effective role here.',
        guard: { kind: 'session' },
        permission: 'workspaces.read',
        rateCategory: 'read',
        schema: { params: wsParams, response: { 200: z.object({ members: z.array(wsMemberSchema) }) } },
        handler: async ({ authority, params }) => ({ members: await workspaces.listMembers(scopeOf(authority).orgId, params.ws) }),
      }),
      defineRoute({
        method: 'PUT',
        url: '/v1/orgs/:org/workspaces/:ws/members/:user',
        summary: 'Set a member\'s role in this workspace: it narrows the org role, never widens it.',
        guard: { kind: 'session' },
        permission: 'workspace.members.manage',
        rateCategory: 'write',
        schema: { params: wsMemberParams, body: z.strictObject({ role }), response: { 200: wsMemberSchema } },
        handler: async ({ authority, params, body, principal }) => {
          const { orgId, role: mine } = scopeOf(authority);
          return workspaces.setMemberRole(orgId, params.ws, mine, params.user, body.role, principal?.id);
        },
      }),
      defineRoute({
        method: 'DELETE',
        url: '/v1/orgs/:org/workspaces/:ws/members/:user',
        summary: 'Clear a member\'s workspace role: the org role applies again.',
        guard: { kind: 'session' },
        permission: 'workspace.members.manage',
        rateCategory: 'write',
        schema: { params: wsMemberParams, response: { 200: wsMemberSchema } },
        handler: async ({ authority, params, principal }) => {
          const { orgId, role: mine } = scopeOf(authority);
          return workspaces.setMemberRole(orgId, params.ws, mine, params.user, null, principal?.id);
        },
      }),
    ],
  };
}
