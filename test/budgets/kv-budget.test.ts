/**
 * The kv budget steps (src/store/kv/budget.ts) on the memory kv and on Redis (the Lua scripts), the
 * same cases for both: absent counters are reported, never read as zero; a reservation counts in
 * every counter or in none; a reservation a rebuild already counted is decided once; settling
 * replaces the reservation once; concurrent reservations never pass the limit.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMemoryKv } from '../../src/store/kv/memory.ts';
import { createRedisKv } from '../../src/store/kv/redis.ts';
import type { Kv } from '../../src/store/kv/types.ts';
import { redisTarget, requireUrl } from '../support/services.ts';

const redis = redisTarget();
const TTL = 60_000;

function suite(name: string, open: () => Promise<Kv>, skip?: string): void {
  (skip ? describe.skip : describe)(`budget counters on ${name}${skip ? `: ${skip}` : ''}`, () => {
    const withKv = async (fn: (kv: Kv) => Promise<void>): Promise<void> => {
      const kv = await open();
      try {
        await fn(kv);
      } finally {
        await kv.close();
      }
    };

    it('an absent counter is reported missing and nothing is counted', async () => {
      await withKv(async (kv) => {
        await kv.seedBudget('a', 0, [], TTL);
        expect(await kv.reserveBudget('r1', [{ key: 'a', amount: 5, limit: 10, ttlMs: TTL }, { key: 'b', amount: 5, limit: 10, ttlMs: TTL }])).toEqual({ status: 'missing', indexes: [1] });
        expect(await kv.readBudget('a')).toBe(0);
        expect(await kv.readBudget('b')).toBeNull();
      });
    });

    it('all or nothing across counters: refused by one, counted in none', async () => {
      await withKv(async (kv) => {
        await kv.seedBudget('a', 0, [], TTL);
        await kv.seedBudget('b', 8, [], TTL);
        expect(await kv.reserveBudget('r1', [{ key: 'a', amount: 5, limit: 10, ttlMs: TTL }, { key: 'b', amount: 5, limit: 10, ttlMs: TTL }])).toEqual({ status: 'refused', index: 1, used: [0, 8] });
        expect(await kv.reserveBudget('r2', [{ key: 'a', amount: 2, limit: 10, ttlMs: TTL }, { key: 'b', amount: 2, limit: 10, ttlMs: TTL }])).toEqual({ status: 'reserved', used: [2, 10] });
        // Up to the limit exactly; one more is refused.
        expect((await kv.reserveBudget('r3', [{ key: 'a', amount: 1, limit: 2, ttlMs: TTL }])).status).toBe('refused');
      });
    });

    it('settle replaces the reservation by the actual use once; unknown or repeated settles change nothing', async () => {
      await withKv(async (kv) => {
        await kv.seedBudget('a', 0, [], TTL);
        await kv.reserveBudget('r1', [{ key: 'a', amount: 10, limit: 100, ttlMs: TTL }]);
        await kv.settleBudget('r1', [{ key: 'a', amount: 3 }]);
        expect(await kv.readBudget('a')).toBe(3);
        await kv.settleBudget('r1', [{ key: 'a', amount: 50 }]);
        await kv.settleBudget('nope', [{ key: 'a', amount: 50 }]);
        expect(await kv.readBudget('a')).toBe(3);
      });
    });

    it('a reservation a rebuild already counted is decided against the rebuilt use, and taken out when refused', async () => {
      await withKv(async (kv) => {
        // The ledger had r1 (5) and r2 (7) open when kv lost the counter.
        expect(await kv.seedBudget('a', 12, [['r1', 5], ['r2', 7]], TTL)).toBe(true);
        expect(await kv.seedBudget('a', 0, [], TTL)).toBe(false);
        expect(await kv.reserveBudget('r1', [{ key: 'a', amount: 5, limit: 12, ttlMs: TTL }])).toEqual({ status: 'reserved', used: [12] });
        expect(await kv.reserveBudget('r2', [{ key: 'a', amount: 7, limit: 11, ttlMs: TTL }])).toEqual({ status: 'refused', index: 0, used: [5] });
        await kv.settleBudget('r1', [{ key: 'a', amount: 4 }]);
        expect(await kv.readBudget('a')).toBe(4);
      });
    });

    it('200 concurrent reservations against room for 50: exactly 50 counted', async () => {
      await withKv(async (kv) => {
        await kv.seedBudget('a', 0, [], TTL);
        const results = await Promise.all(Array.from({ length: 200 }, (_, i) => kv.reserveBudget(`r${i}`, [{ key: 'a', amount: 2, limit: 100, ttlMs: TTL }])));
        expect(results.filter((r) => r.status === 'reserved')).toHaveLength(50);
        expect(await kv.readBudget('a')).toBe(100);
      });
    });

    it('refuses malformed arguments before touching the store', async () => {
      await withKv(async (kv) => {
        await expect(kv.reserveBudget('bad id!', [{ key: 'a', amount: 1, limit: 1, ttlMs: TTL }])).rejects.toThrow(RangeError);
        await expect(kv.reserveBudget('r', [{ key: 'a', amount: -1, limit: 1, ttlMs: TTL }])).rejects.toThrow(RangeError);
        await expect(kv.reserveBudget('r', [{ key: 'a', amount: 1.5, limit: 1, ttlMs: TTL }])).rejects.toThrow(RangeError);
        await expect(kv.reserveBudget('r', [])).rejects.toThrow(RangeError);
      });
    });
  });
}

suite('the memory kv', async () => createMemoryKv());
suite('Redis', async () => createRedisKv(requireUrl(redis), { keyPrefix: `tb${randomBytes(6).toString('hex')}:` }), redis.skipReason);
