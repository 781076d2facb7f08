/** What the gateway's route files share: path parameters, the caller's scope, their dependencies. */
import type { Logger } from 'pino';
import { z } from 'zod';
import { AppError } from '../../server/errors.ts';
import type { Authority, Principal } from '../../server/route.ts';
import type { Db } from '../../store/db-types.ts';
import type { ApiKeys } from '../keys.ts';
import type { InflightCalls } from '../inflight.ts';
import type { Meter } from '../metering.ts';
import type { LimitedKey } from '../monthly-limit.ts';
import type { PriceTable } from '../prices.ts';
import type { ModelLister } from '../model-listing.ts';
import type { GatewayProxy } from '../proxy.ts';
import type { RoutableProvider, Routing } from '../routing.ts';
import type { AiCallStep } from '../steps.ts';

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

export interface GatewayFeatureDeps {
  db: Db;
  keys: ApiKeys;
  routing: Routing;
  meter: Meter;
  proxy: GatewayProxy;
  prices: PriceTable;
  /** The platform's providers with their keys, read per call (the vendor keys reload). */
  platform: () => readonly RoutableProvider[];
  /** Counts a call against the key's monthly limit; throws when it is over (createMonthlyLimit). */
  countMonthlyCall: (key: LimitedKey, now: number) => Promise<void>;
  /** The calls running now: stopped and awaited at shutdown. */
  inflight: InflightCalls;
  logger: Logger;
  now: () => number;
  bodyLimitBytes: number;
  /** This node's id in `x-gatehouse-hops` (src/gateway/loop.ts). */
  nodeId: string;
  /** Asks providers with `*` patterns which models they offer (src/gateway/model-listing.ts). */
  modelLister: ModelLister;
  /** The steps other features add around every AI call (src/gateway/steps.ts), in run order; read per call. */
  callSteps?: () => readonly AiCallStep[];
}
