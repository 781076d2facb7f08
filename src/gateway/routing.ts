/**
 * Where a gateway call goes (GW-2, GW-3): the providers a workspace can use, the models it may
 * call, its aliases with their fallback chains, and the workspace's own vendor keys.
 *
 * Providers come from two places: the platform's (config `gateway.providers`, keys from
 * `gateway.providerKeys`) and a workspace's own (bring your own key, stored here with the key
 * sealed under the org's data key, write-only through the API). Each lists the models it serves.
 *
 * A requested model resolves, for the route's wire format, to:
 * - a workspace alias of that name: its targets in order (the fallback chain), each `{ model,
 *   provider? }` served by the named provider or else the first provider serving that model;
 *   targets no provider of the route's format serves are skipped;
 * - otherwise, if the workspace allows the model (`allowedModels`, null for every model), the first
 *   provider serving it: the workspace's own providers before the platform's.
 * Nothing found is MODEL_NOT_FOUND (404) in the vendor's shape, whether the model does not exist or
 * the workspace may not call it: the answer does not tell which.
 *
 * A workspace's routing (its providers with their opened keys, its settings) is cached per node and
 * evicted on every node through kv pub/sub when it changes.
 *
 * The resolution rules are in src/gateway/routing-resolve.ts, the database side in
 * src/gateway/routing-store.ts; this file holds the per-node cache and its evictions.
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { Db } from '../store/db-types.ts';
import { createTtlCache } from './cache.ts';
import type { ModelSettings, WorkspaceRouting } from './routing-resolve.ts';
import * as store from './routing-store.ts';
import type { ProviderView, SetProviderInput } from './routing-store.ts';
import type { UpstreamPolicy } from './upstream.ts';

export {
  assertAnyProvider,
  listModels,
  platformProviders,
  resolveTargets,
  type Alias,
  type AliasTarget,
  type ModelSettings,
  type Resolution,
  type RoutableProvider,
  type WorkspaceRouting,
} from './routing-resolve.ts';
export { MAX_PROVIDERS_PER_WORKSPACE, type ProviderView, type SetProviderInput } from './routing-store.ts';

export interface RoutingDeps {
  db: Db;
  keyring: Keyring;
  audit: AuditLog;
  logger: Logger;
  policy: UpstreamPolicy;
  cacheTtlMs: number;
  /** Whether evictions are reaching this node (the kv subscription is live); the cache is bypassed otherwise. */
  cacheTrusted?: () => boolean;
  /** Announces a changed workspace to every node (this one included). */
  publishEviction: (orgId: string, wsId: string) => Promise<void>;
}

/**
 * Workspaces' own providers and model settings over the database, with this node's cache of each
 * workspace's routing (its providers' keys opened).
 * @example const routing = createRouting({ db, keyring, audit, logger, policy: config.gateway.upstream, cacheTtlMs: 60_000, publishEviction })
 */
export function createRouting(deps: RoutingDeps) {
  const { logger } = deps;
  const cache = createTtlCache<WorkspaceRouting>({ ttlMs: deps.cacheTtlMs, maxEntries: 10_000, ...(deps.cacheTrusted ? { trusted: deps.cacheTrusted } : {}) });
  const cacheKey = (orgId: string, wsId: string): string => `${orgId}/${wsId}`;

  async function evict(orgId: string, wsId: string): Promise<void> {
    cache.delete(cacheKey(orgId, wsId));
    try {
      await deps.publishEviction(orgId, wsId);
    } catch (err) {
      logger.error({ err, orgId, wsId }, 'could not publish a workspace routing eviction');
    }
  }

  return {
    /** A workspace's routing, from this node's cache when fresh. */
    load(orgId: string, wsId: string): Promise<WorkspaceRouting> {
      return cache.load(cacheKey(orgId, wsId), () => store.readRouting(deps, orgId, wsId));
    },

    /** Drops a workspace from this node's cache (an eviction message). */
    dropLocal(orgId: string, wsId: string): void {
      cache.delete(cacheKey(orgId, wsId));
    },

    /** Empties this node's cache (its eviction subscription was down: messages may have been missed). */
    clearLocal(): void {
      cache.clear();
    },

    /** Drops every workspace of an org from this node's cache. */
    dropOrg(orgId: string): void {
      cache.deleteWhere((key) => key.startsWith(`${orgId}/`));
    },

    listProviders(orgId: string, wsId: string): Promise<ProviderView[]> {
      return store.listProviders(deps, orgId, wsId);
    },

    /**
     * Creates or replaces a workspace's provider `name`. The key is sealed before the transaction
     * (bound to a fresh row id) and never returned.
     */
    async setProvider(orgId: string, wsId: string, actorId: string, name: string, input: SetProviderInput): Promise<ProviderView> {
      const view = await store.setProvider(deps, orgId, wsId, actorId, name, input);
      await evict(orgId, wsId);
      return view;
    },

    /** Deletes a workspace's provider and its sealed key. Throws NOT_FOUND. */
    async removeProvider(orgId: string, wsId: string, name: string): Promise<void> {
      await store.removeProvider(deps, orgId, wsId, name);
      await evict(orgId, wsId);
    },

    getSettings(orgId: string, wsId: string): Promise<ModelSettings> {
      return store.getSettings(deps, orgId, wsId);
    },

    /** Replaces a workspace's allowed models and aliases. */
    async setSettings(orgId: string, wsId: string, settings: ModelSettings): Promise<ModelSettings> {
      const result = await store.setSettings(deps, orgId, wsId, settings);
      await evict(orgId, wsId);
      return result;
    },
  };
}

export type Routing = ReturnType<typeof createRouting>;
