/**
 * Workspaces of an organization and the per-workspace roles that narrow (never widen) the org role.
 */
import { z } from 'zod';
import { orgScopeOf } from '../../server/principal.ts';
import { defineRoute, type RouteDef } from '../../server/route.ts';
import { isRole } from '../permissions.ts';
import type { Workspaces } from '../workspaces.ts';
import { name, noContent, orgParams, role, workspaceSchema, wsMemberParams, wsMemberSchema, wsParams } from './schemas.ts';

export function workspaceRoutes(workspaces: Workspaces): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/workspaces',
      summary: 'List workspaces.',
      guard: { kind: 'session' },
      permission: 'workspaces.read',
      rateCategory: 'read',
      schema: { params: orgParams, response: { 200: z.object({ workspaces: z.array(workspaceSchema) }) } },
      handler: async ({ authority }) => ({ workspaces: await workspaces.list(orgScopeOf(authority, isRole).orgId) }),
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
        const ws = await workspaces.create(orgScopeOf(authority, isRole).orgId, body.name);
        reply.code(201);
        return ws;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/workspaces/:ws',
      summary: 'Read a workspace, with the caller\'s effective role in it (the org role, narrowed by a workspace role).',
      guard: { kind: 'session' },
      permission: 'workspaces.read',
      rateCategory: 'read',
      schema: { params: wsParams, response: { 200: workspaceSchema.extend({ role }) } },
      handler: async ({ authority, params }) => {
        // The authorizer's own answer for this workspace: what the console shows controls by.
        const { orgId, role: mine } = orgScopeOf(authority, isRole);
        return { ...(await workspaces.get(orgId, params.ws)), role: mine };
      },
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/orgs/:org/workspaces/:ws',
      summary: 'Rename a workspace.',
      guard: { kind: 'session' },
      permission: 'workspaces.update',
      rateCategory: 'write',
      schema: { params: wsParams, body: z.strictObject({ name }), response: { 200: workspaceSchema } },
      handler: async ({ authority, params, body }) => workspaces.rename(orgScopeOf(authority, isRole).orgId, params.ws, body.name),
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
        await workspaces.remove(orgScopeOf(authority, isRole).orgId, params.ws);
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
      handler: async ({ authority, params }) => ({ members: await workspaces.listMembers(orgScopeOf(authority, isRole).orgId, params.ws) }),
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
        const { orgId, role: mine } = orgScopeOf(authority, isRole);
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
        const { orgId, role: mine } = orgScopeOf(authority, isRole);
        return workspaces.setMemberRole(orgId, params.ws, mine, params.user, null, principal?.id);
      },
    }),
  ];
}
