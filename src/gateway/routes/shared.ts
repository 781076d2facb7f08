/** What the gateway's route files share: path parameters and their dependencies. */
import { z } from 'zod';
import type { Db } from '../../store/db-types.ts';
import type { ForwardCallDeps } from '../forward-call.ts';
import type { ApiKeys } from '../keys.ts';
import type { ModelLister } from '../model-listing.ts';

export const wsParams = z.strictObject({ org: z.uuid(), ws: z.uuid() });
export const orgParams = z.strictObject({ org: z.uuid() });
export const noContent = z.null();

/** What the gateway's routes need: what an AI call needs (ForwardCallDeps) and the rest. */
export interface GatewayFeatureDeps extends ForwardCallDeps {
  db: Db;
  keys: ApiKeys;
  bodyLimitBytes: number;
  /** Asks providers with `*` patterns which models they offer (src/gateway/model-listing.ts). */
  modelLister: ModelLister;
}
