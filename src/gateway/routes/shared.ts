/** What the gateway's route files share: path parameters, the caller's scope, their dependencies. */
import { z } from 'zod';
import { AppError } from '../../server/errors.ts';
import type { Authority, Principal } from '../../server/route.ts';
import type { Db } from '../../store/db-types.ts';
import type { ForwardCallDeps } from '../forward-call.ts';
import type { ApiKeys } from '../keys.ts';
import type { ModelLister } from '../model-listing.ts';

export const wsParams = z.strictObject({ org: z.uuid(), ws: z.uuid() });
export const orgParams = z.strictObject({ org: z.uuid() });
export const noContent = z.null();

export function userOf(principal: Principal | undefined): string {
  if (!principal || principal.kind !== 'user') throw new AppError('UNAUTHENTICATED');
  return principal.id;
}

export function scopeOf(authority: Authority | undefined): { orgId: string; wsId: string } {
  // The server sets authority for every route that declares a permission; its absence is a wiring bug.
  if (!authority?.tenantId || !authority.workspaceId) throw new Error('workspace route ran without an authority');
  return { orgId: authority.tenantId, wsId: authority.workspaceId };
}

export function orgOf(authority: Authority | undefined): string {
  if (!authority?.tenantId) throw new Error('tenant route ran without an authority');
  return authority.tenantId;
}

/** What the gateway's routes need: what an AI call needs (ForwardCallDeps) and the rest. */
export interface GatewayFeatureDeps extends ForwardCallDeps {
  db: Db;
  keys: ApiKeys;
  bodyLimitBytes: number;
  /** Asks providers with `*` patterns which models they offer (src/gateway/model-listing.ts). */
  modelLister: ModelLister;
}
