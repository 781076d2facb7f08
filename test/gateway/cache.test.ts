import { describe, expect, it } from 'vitest';
import { createTtlCache } from '../../src/gateway/cache.ts';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('the per-node TTL cache', () => {
  it('keeps a loaded value for its lifetime, then loads again', async () => {
    let now = 0;
    let loads = 0;
    const cache = createTtlCache<number>({ ttlMs: 100, maxEntries: 10, now: () => now });
    const loader = async () => ++loads;
    expect(await cache.load('k', loader)).toBe(1);
    now = 99;
    expect(await cache.load('k', loader)).toBe(1);
    now = 100;
    expect(await cache.load('k', loader)).toBe(2);
  });

  it('shares one load between concurrent misses', async () => {
    const cache = createTtlCache<string>({ ttlMs: 1000, maxEntries: 10 });
    const gate = deferred<string>();
    let loads = 0;
    const loader = () => {
      loads++;
      return gate.promise;
    };
    const both = Promise.all([cache.load('k', loader), cache.load('k', loader)]);
    gate.resolve('v');
    expect(await both).toEqual(['v', 'v']);
    expect(loads).toBe(1);
  });

  it('an eviction during a load wins: the stale result reaches its caller but is not kept (a revocation is never undone)', async () => {
    const cache = createTtlCache<string>({ ttlMs: 60_000, maxEntries: 10 });
    const gate = deferred<string>();
    const stale = cache.load('key', () => gate.promise);
    cache.delete('key');
    gate.resolve('valid before revocation');
    expect(await stale).toBe('valid before revocation');
    expect(await cache.load('key', async () => 'revoked')).toBe('revoked');
  });

  it('keeps at most maxEntries, dropping the oldest first; deleteWhere drops by value', async () => {
    const cache = createTtlCache<{ org: string }>({ ttlMs: 60_000, maxEntries: 2 });
    await cache.load('a', async () => ({ org: 'o1' }));
    await cache.load('b', async () => ({ org: 'o2' }));
    await cache.load('c', async () => ({ org: 'o1' }));
    expect(cache.size).toBe(2);
    let reloaded = false;
    await cache.load('a', async () => {
      reloaded = true;
      return { org: 'o1' };
    });
    expect(reloaded).toBe(true);
    cache.deleteWhere((_k, v) => v.org === 'o1');
    expect(cache.size).toBe(0);
  });

  it('untrusted (evictions may be lost): every load reads and nothing is kept; trusted again, nothing stale is served', async () => {
    let trusted = true;
    const cache = createTtlCache<string>({ ttlMs: 60_000, maxEntries: 10, trusted: () => trusted });
    expect(await cache.load('k', async () => 'valid')).toBe('valid');
    trusted = false;
    expect(await cache.load('k', async () => 'revoked')).toBe('revoked');
    expect(await cache.load('other', async () => 'read while untrusted')).toBe('read while untrusted');
    expect(cache.size).toBe(1);
    trusted = true;
    // What the owner does when the subscription is back.
    cache.clear();
    expect(await cache.load('k', async () => 'revoked')).toBe('revoked');
  });

  it('a failed load is not cached', async () => {
    const cache = createTtlCache<string>({ ttlMs: 60_000, maxEntries: 10 });
    await expect(cache.load('k', async () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
    expect(await cache.load('k', async () => 'ok')).toBe('ok');
  });
});
