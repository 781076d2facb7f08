import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { kvOpener, type MakeKvOptions } from './kv.shared-suite.ts';
import type { BackoffRule, Kv } from '../../../src/store/kv/types.ts';

const T = 1_700_000_000_000;
const W = 60_000;

function rule(key: string, over: Partial<BackoffRule> = {}): BackoffRule {
  return { key, freeAttempts: 3, baseDelayMs: 1000, maxDelayMs: 8000, lockAfter: 0, lockMs: 0, maxAttempts: 0, ttlMs: 60_000, ...over };
}

/**
 * The reserve-before-check operations every kv adapter must provide (reserveBackoff,
 * releaseBackoff, releaseSlidingWindow), with exact numbers and under concurrency on one
 * instance and on two instances sharing a store (two nodes).
 */
export function kvBackoffSharedSuite(name: string, makeKv: (opts: MakeKvOptions) => Promise<Kv>): void {
  describe(`${name}: reserve before check`, () => {
    const open = kvOpener(makeKv);
    const key = (label: string): string => `test:backoff:${label}:${randomUUID()}`;

    it('free attempts, then a doubling wait capped at maxDelayMs', async () => {
      const kv = await open();
      const r = rule(key('doubling'));
      for (let i = 1; i <= 3; i++) expect(await kv.reserveBackoff([r], T)).toEqual({ allowed: true, retryAfterMs: 0, refusedBy: -1, counts: [i] });
      expect(await kv.reserveBackoff([r], T)).toEqual({ allowed: false, retryAfterMs: 1000, refusedBy: 0, counts: [3] });
      expect((await kv.reserveBackoff([r], T + 1000)).allowed).toBe(true);
      expect(await kv.reserveBackoff([r], T + 1000)).toMatchObject({ allowed: false, retryAfterMs: 2000 });
      let at = T + 1000;
      const waits: number[] = [];
      for (let i = 0; i < 4; i++) {
        const refused = await kv.reserveBackoff([r], at);
        waits.push(refused.retryAfterMs);
        at += refused.retryAfterMs;
        expect((await kv.reserveBackoff([r], at)).allowed).toBe(true);
      }
      expect(waits).toEqual([2000, 4000, 8000, 8000]);
    });

    it('a lock after lockAfter attempts, and nothing at all from maxAttempts on', async () => {
      const kv = await open();
      const r = rule(key('lock'), { freeAttempts: 2, lockAfter: 3, lockMs: 50_000, maxAttempts: 5 });
      expect((await kv.reserveBackoff([r], T)).allowed).toBe(true);
      expect((await kv.reserveBackoff([r], T)).allowed).toBe(true);
      expect((await kv.reserveBackoff([r], T + 1000)).allowed).toBe(true);
      expect(await kv.reserveBackoff([r], T + 1000)).toMatchObject({ allowed: false, retryAfterMs: 50_000 });
      expect((await kv.reserveBackoff([r], T + 51_000)).counts).toEqual([4]);
      expect((await kv.reserveBackoff([r], T + 101_000)).counts).toEqual([5]);
      // The hard limit: no wait ends it; the lock length is what a client is told.
      expect(await kv.reserveBackoff([r], T + 10_000_000)).toEqual({ allowed: false, retryAfterMs: 50_000, refusedBy: 0, counts: [5] });
      await kv.del(r.key);
      expect((await kv.reserveBackoff([r], T + 10_000_000)).counts).toEqual([1]);
    });

    it('attack: a bucket the store lost is read at its floor (a lock recorded elsewhere holds), and an allowed attempt writes it back', async () => {
      const kv = await open();
      const r = rule(key('floor'), { freeAttempts: 2, lockAfter: 3, lockMs: 50_000, maxAttempts: 5 });
      // Nothing stored, floor at the lock: one attempt per lockMs after floorLast.
      const floored = { ...r, floorCount: 3, floorLast: T };
      expect(await kv.reserveBackoff([floored], T + 1000)).toEqual({ allowed: false, retryAfterMs: 49_000, refusedBy: 0, counts: [3] });
      expect(await kv.reserveBackoff([floored], T + 50_000)).toEqual({ allowed: true, retryAfterMs: 0, refusedBy: -1, counts: [4] });
      // Written back: without the floor the store itself now refuses.
      expect(await kv.reserveBackoff([r], T + 50_001)).toMatchObject({ allowed: false, counts: [4] });
      // A stored count above the floor wins; a floor at the hard limit refuses with no wait ending it.
      expect((await kv.reserveBackoff([{ ...r, floorCount: 1, floorLast: T }], T + 100_000)).counts).toEqual([5]);
      await kv.del(r.key);
      expect(await kv.reserveBackoff([{ ...r, floorCount: 5, floorLast: 0 }], T + 10_000_000)).toEqual({ allowed: false, retryAfterMs: 50_000, refusedBy: 0, counts: [5] });
      expect((await kv.reserveBackoff([r], T + 10_000_000)).counts).toEqual([1]);
      await expect(kv.reserveBackoff([{ ...r, floorCount: -1 }], T)).rejects.toThrow(RangeError);
    });

    it('one refusing bucket refuses the attempt and counts it in none', async () => {
      const kv = await open();
      const a = rule(key('a'), { freeAttempts: 1 });
      const b = rule(key('b'), { freeAttempts: 5 });
      expect((await kv.reserveBackoff([a, b], T)).counts).toEqual([1, 1]);
      expect(await kv.reserveBackoff([a, b], T)).toEqual({ allowed: false, retryAfterMs: 1000, refusedBy: 0, counts: [1, 1] });
      expect((await kv.reserveBackoff([b], T)).counts).toEqual([2]);
    });

    it('releaseBackoff gives one reservation back, never below zero', async () => {
      const kv = await open();
      const r = rule(key('release'), { freeAttempts: 1 });
      await kv.releaseBackoff(r.key);
      expect((await kv.reserveBackoff([r], T)).counts).toEqual([1]);
      await kv.releaseBackoff(r.key);
      await kv.releaseBackoff(r.key);
      expect((await kv.reserveBackoff([r], T)).counts).toEqual([1]);
      expect((await kv.reserveBackoff([r], T)).allowed).toBe(false);
    });

    it('attack: 60 parallel attempts on one instance get exactly the free ones', async () => {
      const kv = await open();
      const r = rule(key('parallel'), { freeAttempts: 5 });
      const results = await Promise.all(Array.from({ length: 60 }, () => kv.reserveBackoff([r], T)));
      expect(results.filter((x) => x.allowed)).toHaveLength(5);
    });

    /** Two instances on one store (two nodes); the memory kv has no second node and gives the same one twice. */
    async function twoNodes(): Promise<[Kv, Kv]> {
      const namespace = randomUUID();
      const a = await open({ namespace });
      return [a, a.kind === 'memory' ? a : await open({ namespace })];
    }

    it('attack: 60 parallel attempts split over two instances sharing a store get exactly the free ones', async () => {
      const [a, b] = await twoNodes();
      const r = rule(key('two-nodes'), { freeAttempts: 5 });
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).reserveBackoff([r], T)));
      expect(results.filter((x) => x.allowed)).toHaveLength(5);
    });

    it('releaseSlidingWindow gives back one hit of the window it was counted in, never below zero', async () => {
      const kv = await open();
      const k = key('sw');
      await kv.releaseSlidingWindow(k, W, T);
      for (let i = 0; i < 3; i++) expect((await kv.hitSlidingWindow(k, 3, W, T)).allowed).toBe(true);
      expect((await kv.hitSlidingWindow(k, 3, W, T + 10)).allowed).toBe(false);
      await kv.releaseSlidingWindow(k, W, T);
      expect((await kv.hitSlidingWindow(k, 3, W, T + 20)).allowed).toBe(true);
      expect((await kv.hitSlidingWindow(k, 3, W, T + 30)).allowed).toBe(false);
    });

    it('attack: 40 parallel hits with parallel give-backs never exceed the limit of those kept', async () => {
      const [a, b] = await twoNodes();
      const k = key('sw-parallel');
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).hitSlidingWindow(k, 10, W, T)));
      expect(results.filter((x) => x.allowed)).toHaveLength(10);
      // Four successes give their hits back: exactly four more fit, however many ask at once.
      await Promise.all(Array.from({ length: 4 }, () => a.releaseSlidingWindow(k, W, T)));
      const more = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).hitSlidingWindow(k, 10, W, T + 1)));
      expect(more.filter((x) => x.allowed)).toHaveLength(4);
    });
  });
}
