import { randomUUID } from 'node:crypto';
import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { redisTarget, requireUrl } from '../../support/services.ts';
import { createKv } from '../../../src/store/kv/index.ts';
import { createMemoryKv } from '../../../src/store/kv/memory.ts';
import { createRedisKv } from '../../../src/store/kv/redis.ts';
import { kvBackoffSharedSuite } from '../suites/kv-backoff.shared-suite.ts';
import { kvSharedSuite } from '../suites/kv.shared-suite.ts';
import type { MakeKvOptions } from '../suites/kv.shared-suite.ts';
import type { Kv } from '../../../src/store/kv/types.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

kvSharedSuite('memory kv', async ({ now }) => createMemoryKv({ now }));
kvBackoffSharedSuite('memory kv', async ({ now }) => createMemoryKv({ now }));

describe('memory kv specifics', () => {
  it('expires keys on its injected clock, and incr does not extend the TTL', async () => {
    let clock = 1_000;
    const kv = createMemoryKv({ now: () => clock });
    try {
      await kv.set('s', 'v', 1_000);
      await kv.incr('c', 1, 1_000);
      clock += 500;
      await kv.incr('c', 1, 1_000);
      clock += 499;
      expect(await kv.get('s')).toBe('v');
      expect(await kv.get('c')).toBe('2');
      clock += 1;
      expect(await kv.get('s')).toBeNull();
      expect(await kv.get('c')).toBeNull();
      expect(await kv.setIfAbsent('s', 'w', 1_000)).toBe(true);
    } finally {
      await kv.close();
    }
  });

  it('delivers messages after publish returns, not inside it', async () => {
    const kv = createMemoryKv();
    try {
      const received: string[] = [];
      await kv.subscribe('ch', (message) => received.push(message));
      await kv.publish('ch', 'later');
      expect(received).toEqual([]);
      await sleep(10);
      expect(received).toEqual(['later']);
    } finally {
      await kv.close();
    }
  });

  it('createKv picks memory without a Redis URL', async () => {
    const kv = await createKv({});
    try {
      expect(kv.kind).toBe('memory');
    } finally {
      await kv.close();
    }
  });
});

const redis = redisTarget();

/** A TCP proxy to Redis that the test can cut, standing in for a Redis that goes away. */
async function startProxy(upstreamUrl: string, port = 0): Promise<{ port: number; stop: () => Promise<void> }> {
  const upstream = new URL(upstreamUrl);
  const sockets = new Set<Socket>();
  const server = createServer((downstream) => {
    const up = createConnection(Number(upstream.port || '6379'), upstream.hostname);
    sockets.add(downstream);
    sockets.add(up);
    const drop = (): void => {
      downstream.destroy();
      up.destroy();
      sockets.delete(downstream);
      sockets.delete(up);
    };
    downstream.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
    downstream.pipe(up).pipe(downstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

if (redis.skipReason !== undefined) {
  console.warn(redis.skipReason);
  describe.skip(redis.skipReason, () => {
    it('Redis kv', () => undefined);
  });
} else {
  const makeRedisKv = ({ now, namespace }: MakeKvOptions): Promise<Kv> =>
    createRedisKv(requireUrl(redis), { now, keyPrefix: `gh:test:${namespace ?? randomUUID()}:` });

  kvSharedSuite('redis kv', makeRedisKv);
  kvBackoffSharedSuite('redis kv', makeRedisKv);

  describe('redis kv specifics', () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it('rejects within a few seconds with a clear message when Redis is unreachable', async () => {
      const started = Date.now();
      await expect(createRedisKv('redis://127.0.0.1:1')).rejects.toThrow(
        /kv: Redis unreachable at redis:\/\/127\.0\.0\.1:1.*ECONNREFUSED/,
      );
      expect(Date.now() - started).toBeLessThan(4_000);
    });

    it('keeps the password out of the error message', async () => {
      const error: unknown = await createRedisKv('redis://user:hunter2@127.0.0.1:1').catch((e: unknown) => e); // secret-scan: fake
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).not.toContain('hunter2');
      expect((error as Error).message).toContain('***');
    });

    it('createKv picks Redis when a URL is given', async () => {
      const kv = await createKv({ redisUrl: requireUrl(redis), keyPrefix: `gh:test:${randomUUID()}:` });
      cleanups.push(() => kv.close());
      expect(kv.kind).toBe('redis');
      await kv.ping();
    });

    it('rejects calls quickly while the server is gone, then recovers with its subscriptions', async () => {
      const url = requireUrl(redis);
      let proxy = await startProxy(url);
      const viaProxy = new URL(url);
      viaProxy.hostname = '127.0.0.1';
      viaProxy.port = String(proxy.port);
      const kv = await createRedisKv(viaProxy.toString(), { keyPrefix: `gh:test:${randomUUID()}:` });
      cleanups.push(() => kv.close());
      cleanups.push(() => proxy.stop());

      const received: string[] = [];
      const transitions: boolean[] = [];
      kv.onSubscriptionsLive((live) => transitions.push(live));
      expect(kv.subscriptionsLive()).toBe(false);
      await kv.subscribe('events', (message) => received.push(message));
      expect(kv.subscriptionsLive()).toBe(true);
      await kv.set('k', 'kept', 60_000);

      await proxy.stop();
      // The subscriber's connection is gone: messages published now would be lost to it.
      for (let attempt = 0; attempt < 100 && kv.subscriptionsLive(); attempt++) await sleep(50);
      expect(kv.subscriptionsLive()).toBe(false);
      for (const attempt of [
        () => kv.get('k'),
        () => kv.ping(),
        () => kv.incr('n', 1, 60_000),
        () => kv.hitSlidingWindow('w', 5, 10_000),
        () => kv.publish('events', 'lost'),
      ]) {
        const started = Date.now();
        await expect(attempt()).rejects.toThrow(/kv: Redis \w+ failed/);
        expect(Date.now() - started).toBeLessThan(3_000);
      }

      proxy = await startProxy(url, proxy.port);
      const deadline = Date.now() + 15_000;
      for (;;) {
        try {
          await kv.ping();
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(100);
        }
      }
      expect(await kv.get('k')).toBe('kept');
      // The subscriber reconnects on its own schedule; live again means Redis confirmed the channel,
      // so one message published from then on is delivered.
      while (!kv.subscriptionsLive()) {
        if (Date.now() > deadline) throw new Error('subscription did not come back after reconnect');
        await sleep(100);
      }
      expect(transitions).toEqual([true, false, true]);
      await kv.publish('events', 'back');
      for (let attempt = 0; attempt < 100 && received.length === 0; attempt++) await sleep(20);
      expect(received).toEqual(['back']);
    });

    it('rejects calls on a client that was disconnected', async () => {
      const kv = await createRedisKv(requireUrl(redis), { keyPrefix: `gh:test:${randomUUID()}:` });
      await kv.close();
      const started = Date.now();
      await expect(kv.hitSlidingWindow('w', 1, 1_000)).rejects.toThrow(/closed/);
      expect(Date.now() - started).toBeLessThan(1_000);
    });

    it('falls back to EVAL when Redis has lost its script cache', async () => {
      const kv = await createRedisKv(requireUrl(redis), { keyPrefix: `gh:test:${randomUUID()}:` });
      cleanups.push(() => kv.close());
      expect((await kv.hitSlidingWindow('w', 2, 10_000, 0)).allowed).toBe(true);
      const admin = new Redis(requireUrl(redis));
      // Other suites sharing this Redis only pay one EVAL each; their results are unaffected.
      await admin.script('FLUSH');
      await admin.quit();
      expect(await kv.hitSlidingWindow('w', 2, 10_000, 0)).toEqual({
        allowed: true,
        limit: 2,
        remaining: 0,
        retryAfterMs: 0,
        resetMs: 20_000,
      });
      expect(await kv.incr('n', 1, 60_000)).toBe(1);
    });

    it('gives the same sliding-window answers as the memory kv for the same inputs', async () => {
      const memory = createMemoryKv();
      const remote = await createRedisKv(requireUrl(redis), { keyPrefix: `gh:test:${randomUUID()}:` });
      cleanups.push(() => remote.close());
      cleanups.push(() => memory.close());
      let state = 7;
      const random = (below: number): number => {
        state = (state * 48_271) % 2_147_483_647;
        return state % below;
      };
      for (const [limit, windowMs] of [[1, 1_000], [4, 3_000], [25, 60_000]] as const) {
        let now = 1_700_000_000_000 + random(windowMs);
        for (let step = 0; step < 150; step += 1) {
          now += random(4) === 0 ? random(windowMs) : random(Math.ceil(windowMs / limit));
          const [fromMemory, fromRedis] = await Promise.all([
            memory.hitSlidingWindow(`same-${limit}`, limit, windowMs, now),
            remote.hitSlidingWindow(`same-${limit}`, limit, windowMs, now),
          ]);
          expect(fromRedis, `limit ${limit}, window ${windowMs}, step ${step}`).toEqual(fromMemory);
        }
      }
    });
  });
}
