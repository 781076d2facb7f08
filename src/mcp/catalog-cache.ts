/**
 * A per-node cache of what each key may use on the MCP endpoint (its catalog: approved tools and
 * prompts, opted-in resource servers), so a tool call does not read the registry every time.
 *
 * The database stays the source of truth: an entry lives at most `ttlMs`, and every registry
 * change (a server set or deleted, a sync, a review, a key's allowlist) drops the workspace's
 * entries on this node at once and on every other node through kv pub/sub (`mcp:evict`, published
 * again until Redis takes it). A node whose subscription is down serves nothing from the cache,
 * and empties it when the subscription is back (evictions may have been missed).
 */
import type { Logger } from 'pino';
import { createTtlCache } from '../gateway/index.ts';
import { createEvictionPublisher } from '../store/kv/evictions.ts';
import type { Kv } from '../store/kv/types.ts';
import type { McpCaller } from './call-support.ts';
import type { KeyCatalog } from './registry-model.ts';

export const MCP_EVICT_CHANNEL = 'mcp:evict';
const WS_MESSAGE = /^ws:([0-9a-f-]{36})\/([0-9a-f-]{36})$/;
const MAX_ENTRIES = 10_000;

export interface CatalogCacheDeps {
  kv: Kv;
  logger: Logger;
  now: () => number;
  ttlMs: number;
  load: (caller: McpCaller) => Promise<KeyCatalog>;
}

/** @example const cache = await createCatalogCache({ kv, logger, now, ttlMs: 30_000, load }); await cache.catalog(caller) */
export async function createCatalogCache(deps: CatalogCacheDeps) {
  const { kv, ttlMs } = deps;
  const trusted = (): boolean => ttlMs > 0 && kv.subscriptionsLive();
  const cache = createTtlCache<KeyCatalog>({ ttlMs, maxEntries: MAX_ENTRIES, now: deps.now, trusted });
  const evictions = createEvictionPublisher({ kv, logger: deps.logger, now: deps.now, giveUpAfterMs: Math.max(ttlMs, 1000) });
  const dropWorkspace = (orgId: string, wsId: string): void => cache.deleteWhere((key) => key.startsWith(`${orgId}/${wsId}/`));
  const stopResync = kv.onSubscriptionsLive((live) => {
    if (live) cache.clear();
  });
  let unsubscribe: () => Promise<void>;
  try {
    unsubscribe = await kv.subscribe(MCP_EVICT_CHANNEL, (message) => {
      const ws = WS_MESSAGE.exec(message);
      if (ws?.[1] && ws[2]) dropWorkspace(ws[1], ws[2]);
    });
  } catch (err) {
    stopResync();
    evictions.close();
    throw err;
  }

  return {
    catalog: (caller: McpCaller): Promise<KeyCatalog> => cache.load(`${caller.tenantId}/${caller.workspaceId}/${caller.apiKeyId}`, () => deps.load(caller)),

    /** After a committed registry change: drop the workspace's entries here, then on every node. */
    async changed(orgId: string, wsId: string): Promise<void> {
      dropWorkspace(orgId, wsId);
      await evictions.publish(MCP_EVICT_CHANNEL, `ws:${orgId}/${wsId}`);
    },

    get size() {
      return cache.size;
    },

    async close(): Promise<void> {
      stopResync();
      evictions.close();
      await unsubscribe().catch(() => undefined);
    },
  };
}

export type CatalogCache = Awaited<ReturnType<typeof createCatalogCache>>;
