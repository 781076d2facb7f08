/**
 * The ingest path's endpoint cache (EDGE-6): a node keeps an endpoint with its opened secrets for
 * `webhooks.endpointCacheSeconds`, at most `webhooks.endpointCacheEntries` endpoints (the oldest
 * leaves first), so a verified delivery does not read and open them from the database each time.
 *
 * A change must take effect at once on every node, because a removed secret or a deleted endpoint
 * that still verifies is a hole. So:
 *   - each endpoint has a version counter in kv (`webhooks:ver:<tenant>/<name>`); a change bumps it
 *     after its commit, before the change's request answers, and a cached entry is used only while
 *     the counter still holds the value read when the entry was loaded (one kv read per delivery
 *     instead of a database transaction and two decryptions). A counter that is missing (never
 *     set, expired, or lost with the kv store's memory) or unreadable means: read the database;
 *   - every change is also announced over kv pub/sub (`webhooks:evict`, `<tenant>/<name>`), and an
 *     org's deletion over tenancy's channel (the org id), and each node drops the entries;
 *   - evictions that cannot be published are retried (src/store/kv/evictions.ts);
 *   - while this node's kv subscription is not live (Redis down or restarting, e.g. a Redis that
 *     lost its memory), nothing is read from or kept in the cache: every delivery reads the
 *     database, the source of truth; when it is live again the whole cache is dropped;
 *   - a load that started before an eviction of its key does not store what it read;
 *   - an entry never outlives the earliest expiry among its secrets.
 * Unknown endpoints are not cached (each miss reads the database, so a new endpoint works at once).
 */
import type { Logger } from 'pino';
import { createEvictionPublisher } from '../store/kv/evictions.ts';
import type { Kv } from '../store/kv/types.ts';
import { isUuid, TENANCY_EVICT_CHANNEL } from '../tenancy/index.ts';
import type { EndpointForVerify } from './endpoints.ts';

export const WEBHOOK_EVICT_CHANNEL = 'webhooks:evict';

/** What the loader returns: the endpoint, and until when its secrets are all unexpired (null: none expires). */
export interface LoadedEndpoint {
  endpoint: EndpointForVerify;
  validUntil: number | null;
}

interface Entry {
  endpoint: EndpointForVerify;
  expiresAt: number;
  /** The endpoint's version counter when it was loaded. */
  version: string;
}

const VERSION_PREFIX = 'webhooks:ver:';

export interface EndpointCache {
  get(tenantId: string, name: string): Promise<EndpointForVerify | null>;
  /** Forgets an endpoint on this node and every other. Call after the change commits; never throws. */
  evict(tenantId: string, name: string): Promise<void>;
  readonly size: number;
  close(): Promise<void>;
}

export async function createEndpointCache(deps: {
  kv: Kv;
  logger: Logger;
  now: () => number;
  ttlMs: number;
  maxEntries: number;
  load: (tenantId: string, name: string) => Promise<LoadedEndpoint | null>;
}): Promise<EndpointCache> {
  const { kv, logger, now, ttlMs, maxEntries, load } = deps;
  const cache = new Map<string, Entry>();
  // Bumped by each eviction of a key (and of its tenant): a load that started before must not store.
  const generation = new Map<string, number>();
  let epoch = 0;
  const keyOf = (tenantId: string, name: string): string => `${tenantId}/${name}`;
  // The counter outlives every entry loaded under it.
  const versionTtlMs = Math.max(ttlMs * 4, 60_000);
  /** The endpoint's version counter, created (at a random value) when missing; null when kv cannot answer. */
  async function versionOf(key: string): Promise<string | null> {
    try {
      const v = await kv.get(VERSION_PREFIX + key);
      if (v !== null) return v;
      // Random, so a counter recreated after a loss never repeats a value an entry was loaded under.
      await kv.setIfAbsent(VERSION_PREFIX + key, String(Math.floor(Math.random() * 2 ** 48)), versionTtlMs);
      return await kv.get(VERSION_PREFIX + key);
    } catch {
      return null;
    }
  }
  const dropKey = (key: string): void => {
    cache.delete(key);
    generation.set(key, (generation.get(key) ?? 0) + 1);
    if (generation.size > maxEntries * 4) generation.clear();
  };
  // Bumped by each eviction of a whole tenant (an org change or deletion).
  const tenantGeneration = new Map<string, number>();
  const dropTenant = (tenantId: string): void => {
    for (const key of cache.keys()) if (key.startsWith(`${tenantId}/`)) cache.delete(key);
    // Loads in flight for this tenant must not store either.
    tenantGeneration.set(tenantId, (tenantGeneration.get(tenantId) ?? 0) + 1);
    if (tenantGeneration.size > maxEntries * 4) {
      tenantGeneration.clear();
      epoch++;
    }
  };
  const evictions = createEvictionPublisher({ kv, logger, now, giveUpAfterMs: Math.max(ttlMs, 1_000) });
  const stopResync = kv.onSubscriptionsLive((live) => {
    if (!live) return;
    cache.clear();
    epoch++;
  });
  const unsubscribers: (() => Promise<void>)[] = [];
  try {
    unsubscribers.push(
      await kv.subscribe(WEBHOOK_EVICT_CHANNEL, (message) => {
        if (/^[0-9a-f-]{36}\/[a-z0-9_-]{1,63}$/.test(message)) dropKey(message);
      }),
    );
    unsubscribers.push(
      await kv.subscribe(TENANCY_EVICT_CHANNEL, (message) => {
        if (isUuid(message)) dropTenant(message);
      }),
    );
  } catch (err) {
    stopResync();
    evictions.close();
    for (const u of unsubscribers) await u().catch(() => undefined);
    throw err;
  }

  return {
    async get(tenantId, name) {
      const key = keyOf(tenantId, name);
      // Evictions may be getting lost: read the database and keep nothing until the subscription is back.
      const live = ttlMs > 0 && kv.subscriptionsLive();
      const version = live ? await versionOf(key) : null;
      const trusted = live && version !== null;
      const hit = trusted ? cache.get(key) : undefined;
      if (hit && now() < hit.expiresAt && hit.version === version) return hit.endpoint;
      const gen = generation.get(key) ?? 0;
      const tenantGen = tenantGeneration.get(tenantId) ?? 0;
      const startedIn = epoch;
      const loaded = await load(tenantId, name);
      if (!loaded) return null;
      if (trusted && version !== null && epoch === startedIn && (generation.get(key) ?? 0) === gen && (tenantGeneration.get(tenantId) ?? 0) === tenantGen) {
        cache.delete(key);
        if (cache.size >= maxEntries) {
          const oldest = cache.keys().next();
          if (!oldest.done) cache.delete(oldest.value);
        }
        cache.set(key, { endpoint: loaded.endpoint, expiresAt: Math.min(now() + ttlMs, loaded.validUntil ?? Infinity), version });
      }
      return loaded.endpoint;
    },
    async evict(tenantId, name) {
      const key = keyOf(tenantId, name);
      dropKey(key);
      try {
        await kv.incr(VERSION_PREFIX + key, 1, versionTtlMs);
      } catch (err) {
        // The announcement below is retried until it is published; other nodes drop the entry then.
        logger.warn({ err }, 'webhook endpoint version could not be bumped');
      }
      await evictions.publish(WEBHOOK_EVICT_CHANNEL, key);
    },
    get size() {
      return cache.size;
    },
    async close() {
      stopResync();
      evictions.close();
      for (const u of unsubscribers) await u().catch(() => undefined);
      cache.clear();
    },
  };
}
