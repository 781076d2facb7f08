/**
 * What the organizations routes share: parameter and response schemas (a handler reads the
 * signed-in user and the tenant scope the authorizer checked through src/server/principal.ts).
 */
import { z } from 'zod';
import { ROLES } from '../permissions.ts';

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
