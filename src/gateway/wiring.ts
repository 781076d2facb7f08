/** The gateway's wiring helpers: cache evictions across nodes, the live platform providers, the model lister. */
import type { Logger } from 'pino';
import type { LiveConfig } from '../config/live.ts';
import type { Config } from '../config/schema.ts';
import type { Kv } from '../store/kv/types.ts';
import { isUuid, TENANCY_EVICT_CHANNEL } from '../tenancy/index.ts';
import type { ApiKeys } from './keys.ts';
import { createModelLister, type ModelLister } from './model-listing.ts';
import type { GatewayProxy } from './proxy.ts';
import { platformProviders, type RoutableProvider, type Routing } from './routing.ts';
import type { createUpstreamAgent } from './upstream.ts';

/** The kv channel of gateway cache evictions: `key:<id>` or `ws:<org>/<workspace>`. */
export const EVICT_CHANNEL = 'gateway:evict';
const KEY_MESSAGE = /^key:([0-9A-Za-z]{16})$/;
const WS_MESSAGE = /^ws:([0-9a-f-]{36})\/([0-9a-f-]{36})$/;

/**
 * Subscribes this node to the gateway's evictions and tenancy's org changes; pushes each
 * unsubscribe onto `unsubscribers` as it is made, so the caller can undo a partial setup.
 */
export async function subscribeEvictions(kv: Kv, keys: ApiKeys, routing: Routing, unsubscribers: (() => Promise<void>)[]): Promise<void> {
  unsubscribers.push(
    await kv.subscribe(EVICT_CHANNEL, (message) => {
      const key = KEY_MESSAGE.exec(message);
      if (key?.[1]) keys.dropLocal(key[1]);
      const ws = WS_MESSAGE.exec(message);
      if (ws?.[1] && ws[2]) routing.dropLocal(ws[1], ws[2]);
    }),
  );
  // Tenancy announces every org, workspace and membership change: a deleted workspace or org
  // takes its keys and routing with it, on every node.
  unsubscribers.push(
    await kv.subscribe(TENANCY_EVICT_CHANNEL, (orgId) => {
      if (!isUuid(orgId)) return;
      keys.dropOrg(orgId);
      routing.dropOrg(orgId);
    }),
  );
}

/** The model lister over the upstream agent, with the gateway's settings. */
export function modelListerFor(settings: Config['gateway'], agent: ReturnType<typeof createUpstreamAgent>, proxy: GatewayProxy, logger: Logger, now: () => number): ModelLister {
  return createModelLister({
    dispatcher: agent,
    logger,
    cacheTtlMs: settings.modelListCacheSeconds * 1000,
    failureTtlMs: settings.modelListFailureCacheSeconds * 1000,
    timeoutMs: settings.modelListTimeoutMs,
    // Read without making a breaker (breakerState would add one to the gauge); only on a cache miss.
    breakerOpen: (providerId) => proxy.breakerStates().some(([id, state]) => id === providerId && state === 'open'),
    now,
  });
}

/**
 * The platform providers with the vendor keys of the running configuration: a list rebuilt only
 * when the keys change, so a call reads the keys once and calls in flight keep theirs.
 */
export function livePlatform(
  providers: Config['gateway']['providers'],
  live: LiveConfig | undefined,
  startKeys: Config['gateway']['providerKeys'],
): () => readonly RoutableProvider[] {
  let keys = startKeys;
  let list = platformProviders(providers, keys);
  return () => {
    const now = live?.current().gateway.providerKeys ?? startKeys;
    if (now !== keys) {
      keys = now;
      list = platformProviders(providers, keys);
    }
    return list;
  };
}
