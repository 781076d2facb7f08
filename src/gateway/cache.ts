/**
 * A per-node cache for what the gateway reads on every call (verified API keys, a workspace's
 * routing): entries live `ttlMs`, at most `maxEntries` are kept (the oldest go first), concurrent
 * misses for one key share one load, and an eviction wins over a load that was already running
 * (that load's result is returned to its caller but not kept), so a revocation is never undone by
 * a read that started before it.
 *
 * `trusted` says whether evictions are reaching this node (the kv subscription is live). While it
 * is false the cache is bypassed: every load reads, nothing is kept. The owner clears the cache
 * when the subscription comes back, since evictions may have been missed in between.
 */

export interface TtlCache<V> {
  /**
   * The cached value, or what `loader` returns (kept for later calls).
   * @example const key = await cache.load(id, () => readKey(id))
   */
  load(key: string, loader: () => Promise<V>): Promise<V>;
  /** Forgets one entry. */
  delete(key: string): void;
  /** Forgets every entry `match` selects. */
  deleteWhere(match: (key: string, value: V) => boolean): void;
  clear(): void;
  readonly size: number;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/** Creates an empty cache. `now` is injected for tests; `ttlOf` gives some values a lifetime of their own; while `trusted()` is false the cache reads through and stores nothing. */
export function createTtlCache<V>(options: { ttlMs: number; maxEntries: number; now?: () => number; ttlOf?: (value: V) => number; trusted?: () => boolean }): TtlCache<V> {
  const now = options.now ?? Date.now;
  const trusted = options.trusted ?? (() => true);
  const entries = new Map<string, Entry<V>>();
  const loading = new Map<string, Promise<V>>();
  // Bumped by every eviction; a load that saw another epoch when it started stores nothing.
  let epoch = 0;

  const evicted = (): void => {
    epoch++;
    loading.clear();
  };

  return {
    load(key, loader) {
      // An eviction may have been lost: neither serve nor keep anything until the owner resyncs.
      if (!trusted()) return loader();
      const hit = entries.get(key);
      if (hit && hit.expiresAt > now()) return Promise.resolve(hit.value);
      const pending = loading.get(key);
      if (pending) return pending;
      const started = epoch;
      const promise = loader().then(
        (value) => {
          if (loading.get(key) === promise) loading.delete(key);
          if (epoch === started) {
            entries.delete(key); // re-inserted last: the Map's order is the age order
            entries.set(key, { value, expiresAt: now() + (options.ttlOf?.(value) ?? options.ttlMs) });
            if (entries.size > options.maxEntries) {
              const oldest = entries.keys().next();
              if (!oldest.done) entries.delete(oldest.value);
            }
          }
          return value;
        },
        (err: unknown) => {
          if (loading.get(key) === promise) loading.delete(key);
          throw err;
        },
      );
      loading.set(key, promise);
      return promise;
    },
    delete(key) {
      entries.delete(key);
      evicted();
    },
    deleteWhere(match) {
      for (const [key, entry] of entries) if (match(key, entry.value)) entries.delete(key);
      evicted();
    },
    clear() {
      entries.clear();
      evicted();
    },
    get size() {
      return entries.size;
    },
  };
}
