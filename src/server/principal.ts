/**
 * How a route handler reads who called it and where it acts: the signed-in user a guard let
 * through (principal) and the tenant scope the authorizer checked (authority).
 *
 * A missing user is the caller's fault (UNAUTHENTICATED, 401). A missing authority on a route that
 * declares a permission is a wiring bug (the server sets it for every such route), so it is a
 * plain Error (500), never a refusal.
 */
import { AppError } from './errors.ts';
import type { Authority, Principal } from './route.ts';

/** The id of the signed-in user (UNAUTHENTICATED when the caller is not a user). */
export function userIdOf(principal: Principal | undefined): string {
  if (!principal || principal.kind !== 'user') throw new AppError('UNAUTHENTICATED');
  return principal.id;
}

/** The signed-in user and their session (UNAUTHENTICATED when the caller is not a user with a session). */
export function userSessionOf(principal: Principal | undefined): { userId: string; sessionId: string } {
  if (!principal || principal.kind !== 'user' || !principal.sessionId) throw new AppError('UNAUTHENTICATED');
  return { userId: principal.id, sessionId: principal.sessionId };
}

/** The org (tenant) a tenant route acts in. */
export function orgIdOf(authority: Authority | undefined): string {
  if (!authority?.tenantId) throw new Error('tenant route ran without an authority');
  return authority.tenantId;
}

/** The org and workspace a workspace route acts in. */
export function workspaceScopeOf(authority: Authority | undefined): { orgId: string; wsId: string } {
  if (!authority?.tenantId || !authority.workspaceId) throw new Error('workspace route ran without an authority');
  return { orgId: authority.tenantId, wsId: authority.workspaceId };
}

/**
 * The org a tenant route acts in and the caller's role there. The role vocabulary belongs to
 * tenancy, which the server does not import: the caller passes its guard (tenancy's `isRole`).
 */
export function orgScopeOf<R extends string>(authority: Authority | undefined, isRole: (value: unknown) => value is R): { orgId: string; role: R } {
  if (!authority?.tenantId || !isRole(authority.role)) throw new Error('tenant route ran without an authority');
  return { orgId: authority.tenantId, role: authority.role };
}
