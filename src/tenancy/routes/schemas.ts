/**
 * What the organizations routes share: parameter and response schemas, and how a handler reads
 * the signed-in user and the tenant scope the authorizer checked.
 */
import { z } from 'zod';
import { AppError } from '../../server/errors.ts';
import type { Authority, Principal } from '../../server/route.ts';
import { ROLES, isRole, type Role } from '../permissions.ts';

export const role = z.enum(ROLES);
export const name = z.string().trim().min(1).max(100);
export const orgParams = z.strictObject({ org: z.uuid() });
export const memberParams = z.strictObject({ org: z.uuid(), user: z.uuid() });
export const wsParams = z.strictObject({ org: z.uuid(), ws: z.uuid() });
export const wsMemberParams = z.strictObject({ org: z.uuid(), ws: z.uuid(), user: z.uuid() });
export const invitationParams = z.strictObject({ org: z.uuid(), invitation: z.uuid() });

export const orgSchema = z.object({ id: z.string(), name: z.string(), role, requireMfa: z.boolean(), createdAt: z.string(), updatedAt: z.string() });
export const memberSchema = z.object({ userId: z.string(), email: z.string(), role, joinedAt: z.string() });
export const workspaceSchema = z.object({ id: z.string(), name: z.string(), createdAt: z.string(), updatedAt: z.string() });
export const wsMemberSchema = z.object({ userId: z.string(), email: z.string(), orgRole: role, workspaceRole: role.nullable(), effectiveRole: role });
export const invitationSchema = z.object({
  id: z.string(),
  email: z.string(),
  role,
  status: z.enum(['pending', 'accepted', 'revoked', 'expired']),
  invitedBy: z.string(),
  expiresAt: z.string(),
  createdAt: z.string(),
});
export const noContent = z.null();

export function userOf(principal: Principal | undefined): string {
  if (!principal || principal.kind !== 'user') throw new AppError('UNAUTHENTICATED');
  return principal.id;
}

export function scopeOf(authority: Authority | undefined): { orgId: string; role: Role } {
  // The server sets authority for every route that declares a permission; its absence is a wiring bug.
  if (!authority?.tenantId || !isRole(authority.role)) throw new Error('tenant route ran without an authority');
  return { orgId: authority.tenantId, role: authority.role };
}
