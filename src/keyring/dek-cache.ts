/**
 * This node's cache of unwrapped data keys (DATA-2): a bounded map by DEK id, oldest evicted first,
 * each entry valid for the configured lifetime (also how long cached keys keep serving while a KMS
 * or HSM does not answer), and the active DEK id per scope with this node's reservation of seals.
 * Evictions come through kv pub/sub so every node forgets a tenant's keys at once.
 */
import type { CachedDek, Reservation } from './types.ts';

export interface DekCache {
  /** A cached key that has not expired, or undefined. */
  fresh(id: string): CachedDek | undefined;
  remember(entry: CachedDek): void;
  /** The active DEK id and reservation per `tenant|subject` slot. */
  active: Map<string, { id: string; reservation: Reservation }>;
  evictTenant(tenantId: string): void;
  /** Forgets the unwrapped keys (after a rewrap), keeping the active ids. */
  clearKeys(): void;
  clear(): void;
  /** Zeroes every cached key and forgets everything. */
  wipe(): void;
}

export function createDekCache(options: { maxEntries: number; now: () => number }): DekCache {
  // Unwrapped DEKs by id, in insertion order so the oldest is evicted first.
  const cache = new Map<string, CachedDek>();
  const active = new Map<string, { id: string; reservation: Reservation }>();
  return {
    active,
    fresh(id) {
      const cached = cache.get(id);
      return cached && cached.expiresAt > options.now() ? cached : undefined;
    },
    remember(entry) {
      cache.delete(entry.id);
      cache.set(entry.id, entry);
      while (cache.size > options.maxEntries) {
        const oldest = cache.keys().next().value;
        if (oldest === undefined) break;
        cache.delete(oldest);
      }
    },
    evictTenant(tenantId) {
      for (const [id, entry] of cache) if (entry.tenantId === tenantId) cache.delete(id);
      for (const key of active.keys()) if (key.startsWith(`${tenantId}|`)) active.delete(key);
    },
    clearKeys() {
      cache.clear();
    },
    clear() {
      cache.clear();
      active.clear();
    },
    wipe() {
      for (const entry of cache.values()) entry.key.fill(0);
      cache.clear();
      active.clear();
    },
  };
}
