import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Kv, SlidingWindowResult } from '../../../src/store/kv/types.ts';

export interface MakeKvOptions {
  /** Clock the kv uses when hitSlidingWindow gets no `now`. */
  now: () => number;
  /**
   * Instances made with the same namespace share keys and channels (two nodes on one
   * store); without one each instance gets its own, so parallel test files cannot collide.
   */
  namespace?: string;
}

/** Window length used by the exact-number tests; long enough that real time never expires a counter mid-test. */
const W = 10_000;
/** A window-aligned instant, so `T + x` is `x` ms into a window. */
const T = 1_700_000_000_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function uniqueKey(label: string): string {
  return `test:${label}:${randomUUID()}`;
}

/** Collects messages and waits for them without fixed sleeps. */
function collector(): { handler: (message: string) => void; messages: string[]; until: (count: number) => Promise<void> } {
  const messages: string[] = [];
  return {
    messages,
    handler: (message) => {
      messages.push(message);
    },
    async until(count) {
      const deadline = Date.now() + 3_000;
      while (messages.length < count) {
        if (Date.now() > deadline) {
          throw new Error(`expected ${count} message(s), got ${messages.length}: ${JSON.stringify(messages)}`);
        }
        await sleep(5);
      }
    },
  };
}

// Park–Miller: deterministic, and its products stay below 2^53 so the sequence is exact.
function prng(seed: number): (below: number) => number {
  let state = seed;
  return (below) => {
    state = (state * 48_271) % 2_147_483_647;
    return state % below;
  };
}

function allowed(remaining: number, resetMs: number, limit: number): SlidingWindowResult {
  return { allowed: true, limit, remaining, retryAfterMs: 0, resetMs };
}

function refused(retryAfterMs: number, resetMs: number, limit: number): SlidingWindowResult {
  return { allowed: false, limit, remaining: 0, retryAfterMs, resetMs };
}

/**
 * Opens kv instances for the tests of one describe block and closes them after each test.
 * Call inside `describe`. @example const open = kvOpener(makeKv); const kv = await open();
 */
export function kvOpener(makeKv: (opts: MakeKvOptions) => Promise<Kv>): (options?: Partial<MakeKvOptions>) => Promise<Kv> {
  const opened: Kv[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((kv) => kv.close()));
  });
  return async (options = {}) => {
    const kv = await makeKv({ now: Date.now, ...options });
    opened.push(kv);
    return kv;
  };
}

/**
 * Defines the behaviour every kv adapter must show. `makeKv` is called once per instance a
 * test needs (twice for the two-node tests); instances are closed after each test.
 */
export function kvSharedSuite(name: string, makeKv: (opts: MakeKvOptions) => Promise<Kv>): void {
  describe(name, () => {
    const open = kvOpener(makeKv);

    describe('counters', () => {
      it('incr creates the counter at `by` and returns the running total', async () => {
        const kv = await open();
        const key = uniqueKey('incr');
        expect(await kv.incr(key, 5, 60_000)).toBe(5);
        expect(await kv.incr(key, -2, 60_000)).toBe(3);
        expect(await kv.get(key)).toBe('3');
      });

      it('incr sets the TTL when it creates the counter and later increments do not extend it', async () => {
        const kv = await open();
        const key = uniqueKey('ttl');
        expect(await kv.incr(key, 1, 200)).toBe(1);
        await sleep(100);
        expect(await kv.incr(key, 1, 200)).toBe(2);
        // 250 ms after creation: gone if the TTL ran from creation, alive until 300+ if extended.
        await sleep(150);
        expect(await kv.get(key)).toBeNull();
        expect(await kv.incr(key, 1, 200)).toBe(1);
      });

      it('incr counts on from a value written by set and keeps its TTL', async () => {
        const kv = await open();
        const key = uniqueKey('set-incr');
        await kv.set(key, '7', 150);
        expect(await kv.incr(key, 2, 60_000)).toBe(9);
        await sleep(200);
        expect(await kv.get(key)).toBeNull();
      });

      it('200 parallel incr by 1 give 200', async () => {
        const kv = await open();
        const key = uniqueKey('parallel-incr');
        const results = await Promise.all(Array.from({ length: 200 }, () => kv.incr(key, 1, 60_000)));
        expect(await kv.get(key)).toBe('200');
        // Every intermediate value handed out exactly once proves no lost or doubled update.
        expect(new Set(results).size).toBe(200);
        expect(Math.max(...results)).toBe(200);
      });

      it('incrExisting counts only on an existing counter, keeps its TTL, and answers null when it is absent', async () => {
        const kv = await open();
        const key = uniqueKey('incr-existing');
        expect(await kv.incrExisting(key, 1)).toBeNull();
        expect(await kv.get(key)).toBeNull();
        await kv.set(key, '41', 150);
        expect(await kv.incrExisting(key, 1)).toBe(42);
        await sleep(200);
        expect(await kv.incrExisting(key, 1)).toBeNull();
        expect(await kv.get(key)).toBeNull();
      });

      it('200 parallel incrExisting after one setIfAbsent give every value once', async () => {
        const kv = await open();
        const key = uniqueKey('parallel-incr-existing');
        expect(await kv.setIfAbsent(key, '1000', 60_000)).toBe(true);
        const results = await Promise.all(Array.from({ length: 200 }, () => kv.incrExisting(key, 1)));
        expect(new Set(results).size).toBe(200);
        expect(Math.max(...(results as number[]))).toBe(1200);
      });

      it('rejects a non-integer increment and a non-positive TTL', async () => {
        const kv = await open();
        await expect(kv.incr(uniqueKey('bad'), 1.5, 1_000)).rejects.toThrow(RangeError);
        await expect(kv.incr(uniqueKey('bad'), 1, 0)).rejects.toThrow(RangeError);
        await expect(kv.set(uniqueKey('bad'), 'x', -1)).rejects.toThrow(RangeError);
      });
    });

    describe('strings', () => {
      it('get, set, overwrite and del', async () => {
        const kv = await open();
        const key = uniqueKey('str');
        expect(await kv.get(key)).toBeNull();
        await kv.set(key, 'one', 60_000);
        expect(await kv.get(key)).toBe('one');
        await kv.set(key, 'two', 60_000);
        expect(await kv.get(key)).toBe('two');
        await kv.del(key);
        expect(await kv.get(key)).toBeNull();
        await expect(kv.del(key)).resolves.toBeUndefined();
      });

      it('a value set with a TTL is absent once the TTL has passed', async () => {
        const kv = await open();
        const key = uniqueKey('str-ttl');
        await kv.set(key, 'v', 100);
        expect(await kv.get(key)).toBe('v');
        await sleep(150);
        expect(await kv.get(key)).toBeNull();
      });

      it('setIfAbsent sets only when absent, and an expired key counts as absent', async () => {
        const kv = await open();
        const key = uniqueKey('nx');
        expect(await kv.setIfAbsent(key, 'first', 100)).toBe(true);
        expect(await kv.setIfAbsent(key, 'second', 100)).toBe(false);
        expect(await kv.get(key)).toBe('first');
        await sleep(150);
        expect(await kv.setIfAbsent(key, 'third', 60_000)).toBe(true);
        expect(await kv.get(key)).toBe('third');
        await kv.del(key);
        expect(await kv.setIfAbsent(key, 'fourth', 60_000)).toBe(true);
      });

      it('parallel setIfAbsent has exactly one winner', async () => {
        const kv = await open();
        const key = uniqueKey('nx-race');
        const wins = await Promise.all(Array.from({ length: 50 }, (_, i) => kv.setIfAbsent(key, String(i), 60_000)));
        expect(wins.filter(Boolean)).toHaveLength(1);
        expect(await kv.get(key)).toBe(String(wins.indexOf(true)));
      });

      it('keys of instances with different namespaces do not collide', async () => {
        const a = await open();
        const b = await open();
        const key = uniqueKey('ns');
        await a.set(key, 'a', 60_000);
        expect(await b.get(key)).toBeNull();
      });
    });

    describe('sliding window', () => {
      it('allows exactly `limit` in a window, then refuses with exact numbers', async () => {
        const kv = await open();
        const key = uniqueKey('sw-limit');
        const results: SlidingWindowResult[] = [];
        for (let i = 0; i < 6; i += 1) results.push(await kv.hitSlidingWindow(key, 5, W, T + 100));
        expect(results.slice(0, 5)).toEqual([4, 3, 2, 1, 0].map((r) => allowed(r, 2 * W - 100, 5)));
        // Full current window: wait 9 900 ms for it to end, then 2 000 ms for its weight to fall to 4.
        expect(results[5]).toEqual(refused(11_900, 2 * W - 100, 5));
        // A window-start burst keeps weighing into the next window, so the wait can exceed windowMs.
        expect(results[5]?.retryAfterMs).toBeGreaterThan(0);
        expect(results[5]?.retryAfterMs).toBeLessThanOrEqual(2 * W);
      });

      it('refuses within windowMs when only the previous window is in the way', async () => {
        const kv = await open();
        const key = uniqueKey('sw-prev');
        for (let i = 0; i < 10; i += 1) expect((await kv.hitSlidingWindow(key, 10, W, T)).allowed).toBe(true);
        // Next window, elapsed 0: estimate 10 → needs 10*(1 - t/W) <= 9, t = 1 000.
        const result = await kv.hitSlidingWindow(key, 10, W, T + W);
        expect(result).toEqual(refused(1_000, W, 10));
        expect(result.retryAfterMs).toBeLessThanOrEqual(W);
      });

      it('does not count a refused hit', async () => {
        const kv = await open();
        const key = uniqueKey('sw-refused');
        for (let i = 0; i < 3; i += 1) await kv.hitSlidingWindow(key, 3, W, T + 100);
        // Each refusal is identical: had one counted, the wait would grow.
        for (let i = 0; i < 5; i += 1) {
          expect(await kv.hitSlidingWindow(key, 3, W, T + 100)).toEqual(refused(9_900 + 3_334, 2 * W - 100, 3));
        }
        // Half-way through the next window the 3 counted hits weigh 1.5: allowed, none left.
        // With the 5 refusals counted (8) they would weigh 4 and refuse.
        expect(await kv.hitSlidingWindow(key, 3, W, T + W + 5_000)).toEqual(allowed(0, 2 * W - 5_000, 3));
      });

      it("decays the previous window's weight as time moves", async () => {
        const kv = await open();
        const key = uniqueKey('sw-decay');
        for (let i = 0; i < 10; i += 1) await kv.hitSlidingWindow(key, 10, W, T);
        expect(await kv.hitSlidingWindow(key, 10, W, T + W + 999)).toEqual(refused(1, W - 999, 10));
        // Weight 10 * 0.5 = 5: remaining floor(10 - 5 - 1) = 4.
        expect(await kv.hitSlidingWindow(key, 10, W, T + W + 5_000)).toEqual(allowed(4, 2 * W - 5_000, 10));
        expect(await kv.hitSlidingWindow(key, 10, W, T + W + 5_000)).toEqual(allowed(3, 2 * W - 5_000, 10));
        // Weight 10 * 0.25 + 2 = 4.5: remaining goes back up to 4 though two more were counted.
        expect(await kv.hitSlidingWindow(key, 10, W, T + W + 7_500)).toEqual(allowed(4, 2 * W - 7_500, 10));
        // Two windows later nothing of the old traffic is left.
        expect(await kv.hitSlidingWindow(key, 10, W, T + 3 * W)).toEqual(allowed(9, 2 * W, 10));
      });

      it('a client that waits retryAfterMs is allowed, one ms earlier it is not', async () => {
        const kv = await open();
        const key = uniqueKey('sw-retry');
        for (let i = 0; i < 5; i += 1) await kv.hitSlidingWindow(key, 5, W, T + 100);
        expect(await kv.hitSlidingWindow(key, 5, W, T + 11_999)).toEqual(refused(1, W - 1_999, 5));
        expect((await kv.hitSlidingWindow(key, 5, W, T + 12_000)).allowed).toBe(true);
      });

      it('retryAfterMs is exact over pseudo-random traffic', async () => {
        const kv = await open();
        const random = prng(20_240_601);
        for (const [limit, windowMs] of [[1, 1_000], [3, 1_000], [7, 60_000], [50, 5_000]] as const) {
          const key = uniqueKey(`sw-prop-${limit}`);
          let now = T + random(windowMs);
          let refusals = 0;
          for (let step = 0; step < Math.max(60, limit * 4); step += 1) {
            // Mostly bursts faster than the limit, with an occasional long pause.
            now += random(limit * 2 + 4) === 0 ? random(windowMs) : random(Math.ceil(windowMs / (limit * 3)));
            const result = await kv.hitSlidingWindow(key, limit, windowMs, now);
            if (result.allowed) {
              expect(result.remaining).toBeGreaterThanOrEqual(0);
              expect(result.remaining).toBeLessThan(limit);
              continue;
            }
            refusals += 1;
            expect(result.remaining).toBe(0);
            expect(result.retryAfterMs).toBeGreaterThan(0);
            expect(result.retryAfterMs).toBeLessThanOrEqual(2 * windowMs);
            expect(result.resetMs).toBeGreaterThanOrEqual(result.retryAfterMs);
            expect((await kv.hitSlidingWindow(key, limit, windowMs, now + result.retryAfterMs - 1)).allowed).toBe(false);
            now += result.retryAfterMs;
            expect((await kv.hitSlidingWindow(key, limit, windowMs, now)).allowed).toBe(true);
          }
          // The traffic must actually exercise refusals, or the loop proves nothing.
          expect(refusals).toBeGreaterThan(3);
        }
      });

      it('uses the injected clock when no `now` is passed', async () => {
        let clock = T + 100;
        const kv = await open({ now: () => clock });
        const key = uniqueKey('sw-clock');
        expect(await kv.hitSlidingWindow(key, 1, W)).toEqual(allowed(0, 2 * W - 100, 1));
        expect(await kv.hitSlidingWindow(key, 1, W)).toEqual(refused(9_900 + W, 2 * W - 100, 1));
        clock += 9_900 + W;
        expect(await kv.hitSlidingWindow(key, 1, W)).toEqual(allowed(0, 2 * W, 1));
      });

      it('200 parallel hits with limit 50 allow exactly 50', async () => {
        const kv = await open();
        const key = uniqueKey('sw-parallel');
        const results = await Promise.all(Array.from({ length: 200 }, () => kv.hitSlidingWindow(key, 50, W, T + 100)));
        const granted = results.filter((r) => r.allowed);
        expect(granted).toHaveLength(50);
        // Each remaining value handed out once: the check and the count were not interleaved.
        expect(granted.map((r) => r.remaining).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
        expect(results.filter((r) => !r.allowed).every((r) => r.remaining === 0 && r.retryAfterMs > 0)).toBe(true);
      });

      it('keeps windows of different keys and window lengths apart', async () => {
        const kv = await open();
        const key = uniqueKey('sw-apart');
        expect((await kv.hitSlidingWindow(key, 1, W, T)).allowed).toBe(true);
        expect((await kv.hitSlidingWindow(`${key}-other`, 1, W, T)).allowed).toBe(true);
        expect((await kv.hitSlidingWindow(key, 1, W, T)).allowed).toBe(false);
      });

      it('rejects a non-positive limit or window', async () => {
        const kv = await open();
        await expect(kv.hitSlidingWindow(uniqueKey('bad'), 0, W, T)).rejects.toThrow(RangeError);
        await expect(kv.hitSlidingWindow(uniqueKey('bad'), 5, 0, T)).rejects.toThrow(RangeError);
        await expect(kv.hitSlidingWindow(uniqueKey('bad'), 5, W, Number.NaN)).rejects.toThrow(RangeError);
      });
    });

    describe('pub/sub', () => {
      it('delivers a message published after subscribe', async () => {
        const kv = await open();
        const channel = uniqueKey('ch');
        const inbox = collector();
        await kv.subscribe(channel, inbox.handler);
        // Once subscribe resolves, evictions reach this node: caches may be trusted.
        expect(kv.subscriptionsLive()).toBe(true);
        await kv.publish(channel, 'hello');
        await inbox.until(1);
        expect(inbox.messages).toEqual(['hello']);
      });

      it('delivers to every subscriber of a channel, in publish order', async () => {
        const kv = await open();
        const channel = uniqueKey('ch-two');
        const first = collector();
        const second = collector();
        await kv.subscribe(channel, first.handler);
        await kv.subscribe(channel, second.handler);
        const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
        for (const message of sent) await kv.publish(channel, message);
        await Promise.all([first.until(20), second.until(20)]);
        expect(first.messages).toEqual(sent);
        expect(second.messages).toEqual(sent);
      });

      it('stops delivery after unsubscribe, leaving other subscribers alone', async () => {
        const kv = await open();
        const channel = uniqueKey('ch-unsub');
        const leaving = collector();
        const staying = collector();
        const unsubscribe = await kv.subscribe(channel, leaving.handler);
        await kv.subscribe(channel, staying.handler);
        await unsubscribe();
        await unsubscribe();
        await kv.publish(channel, 'a');
        await kv.publish(channel, 'b');
        // Messages arrive in order, so once 'b' is in the staying inbox 'a' was delivered too.
        await staying.until(2);
        expect(leaving.messages).toEqual([]);
      });

      it('keeps delivering to a channel re-subscribed right after its last unsubscribe', async () => {
        const kv = await open();
        const channel = uniqueKey('ch-resub');
        const inbox = collector();
        const unsubscribe = await kv.subscribe(channel, () => undefined);
        const pending = unsubscribe();
        await kv.subscribe(channel, inbox.handler);
        await pending;
        await kv.publish(channel, 'still here');
        await inbox.until(1);
        expect(inbox.messages).toEqual(['still here']);
      });

      it('does not deliver across channels', async () => {
        const kv = await open();
        const channel = uniqueKey('ch-a');
        const other = collector();
        const mine = collector();
        await kv.subscribe(`${channel}-other`, other.handler);
        await kv.subscribe(channel, mine.handler);
        await kv.publish(channel, 'x');
        await kv.publish(`${channel}-other`, 'y');
        await Promise.all([mine.until(1), other.until(1)]);
        expect(mine.messages).toEqual(['x']);
        expect(other.messages).toEqual(['y']);
      });

      it('a throwing handler is reported and does not stop the others', async () => {
        const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
        try {
          const kv = await open();
          const channel = uniqueKey('ch-throw');
          const inbox = collector();
          await kv.subscribe(channel, () => {
            throw new Error('handler bug');
          });
          await kv.subscribe(channel, inbox.handler);
          await kv.publish(channel, 'one');
          await kv.publish(channel, 'two');
          await inbox.until(2);
          expect(inbox.messages).toEqual(['one', 'two']);
          expect(consoleError).toHaveBeenCalledWith(expect.stringContaining('subscriber handler'), expect.objectContaining({ message: 'handler bug' }));
        } finally {
          consoleError.mockRestore();
        }
      });

      it('a second instance on the same store (another node) sees messages and counters', async (ctx) => {
        const namespace = randomUUID();
        const first = await open({ namespace });
        // One process is the whole of a memory kv's world; there is no second node to reach.
        if (first.kind === 'memory') ctx.skip('the memory kv serves one node by design');
        const second = await open({ namespace });
        const channel = uniqueKey('ch-node');
        const inbox = collector();
        await second.subscribe(channel, inbox.handler);
        await first.publish(channel, 'from node one');
        await inbox.until(1);
        expect(inbox.messages).toEqual(['from node one']);

        const key = uniqueKey('node-counter');
        await first.incr(key, 2, 60_000);
        expect(await second.incr(key, 1, 60_000)).toBe(3);
        const windowKey = uniqueKey('node-window');
        expect((await first.hitSlidingWindow(windowKey, 1, W, T)).allowed).toBe(true);
        expect((await second.hitSlidingWindow(windowKey, 1, W, T)).allowed).toBe(false);
      });
    });

    describe('lifecycle', () => {
      it('ping resolves on a working store', async () => {
        const kv = await open();
        await expect(kv.ping()).resolves.toBeUndefined();
      });

      it('rejects calls after close, and close is idempotent', async () => {
        const kv = await makeKv({ now: Date.now });
        await kv.close();
        await kv.close();
        await expect(kv.get(uniqueKey('closed'))).rejects.toThrow(/closed/);
        await expect(kv.ping()).rejects.toThrow(/closed/);
      });
    });
  });
}
