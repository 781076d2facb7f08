/**
 * ABUSE-1 (primitive): route categories limited per client IP and per principal, 429 with
 * Retry-After and RateLimit headers; the client IP comes only from trusted proxies; a failing
 * counter store refuses (closed, the default) or lets through (open) as configured.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { fixtureFeature } from '../support/fixture-feature.ts';

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function app(overrides: Record<string, unknown>, extra: Parameters<typeof createTestApp>[0] = {}): Promise<TestApp> {
  const t = await createTestApp({ extraFeatures: [fixtureFeature], overrides, ...extra });
  apps.push(t);
  return t;
}

const tinyRead = { read: { ip: { limit: 3, windowSeconds: 60 }, principal: { limit: 2, windowSeconds: 60 } } };

describe('per-IP limit by route category', () => {
  it('answers 429 RATE_LIMITED with Retry-After, RateLimit and RateLimit-Policy after the limit', async () => {
    const t = await app({ 'rateLimit.categories': tinyRead });
    const url = '/test/items/00000000-0000-4000-8000-000000000000';
    const ok = [];
    for (let i = 0; i < 3; i++) ok.push(await t.app.inject({ url }));
    expect(ok.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect(ok[0]?.headers['ratelimit-policy']).toBe('"ip-read";q=3;w=60');
    expect(ok[0]?.headers.ratelimit).toMatch(/^"ip-read";r=2;t=\d+$/);
    const refused = await t.app.inject({ url });
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe('RATE_LIMITED');
    const retry = Number(refused.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    // Hits early in a window still weigh on the next one, so the wait may reach two windows.
    expect(retry).toBeLessThanOrEqual(120);
    expect(refused.headers.ratelimit).toMatch(/^"ip-read";r=0;t=\d+$/);
    // Another category has its own budget.
    expect((await t.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('another client IP has its own budget', async () => {
    const t = await app({ 'rateLimit.categories': tinyRead });
    const url = '/test/items/00000000-0000-4000-8000-000000000000';
    for (let i = 0; i < 3; i++) await t.app.inject({ url, remoteAddress: '10.0.0.1' });
    expect((await t.app.inject({ url, remoteAddress: '10.0.0.1' })).statusCode).toBe(429);
    expect((await t.app.inject({ url, remoteAddress: '10.0.0.2' })).statusCode).toBe(200);
  });

  it('spoofing X-Forwarded-For without a trusted proxy does not reset the budget', async () => {
    const t = await app({ 'rateLimit.categories': tinyRead });
    const url = '/test/items/00000000-0000-4000-8000-000000000000';
    const codes = [];
    for (let i = 0; i < 5; i++) {
      codes.push((await t.app.inject({ url, remoteAddress: '203.0.113.9', headers: { 'x-forwarded-for': `198.51.100.${i}` } })).statusCode);
    }
    expect(codes).toEqual([200, 200, 200, 429, 429]);
  });

  it('behind a configured trusted proxy, the forwarded client IP is used', async () => {
    const t = await app({ 'rateLimit.categories': tinyRead, 'server.trustedProxies': ['10.9.0.0/16'] });
    const url = '/test/items/00000000-0000-4000-8000-000000000000';
    const codes = [];
    for (let i = 0; i < 5; i++) {
      codes.push((await t.app.inject({ url, remoteAddress: '10.9.0.5', headers: { 'x-forwarded-for': `198.51.100.${i}` } })).statusCode);
    }
    expect(codes).toEqual([200, 200, 200, 200, 200]);
  });
});

describe('CORS preflights', () => {
  it('attack: a flood of OPTIONS preflights is counted against the client IP like any request', async () => {
    const t = await app({ 'rateLimit.categories': tinyRead, 'cors.origins': ['https://app.example.com'] });
    const headers = { origin: 'https://app.example.com', 'access-control-request-method': 'GET' };
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await t.app.inject({ method: 'OPTIONS', url: '/test/items/00000000-0000-4000-8000-000000000000', headers, remoteAddress: '10.5.0.1' })).statusCode);
    expect(codes).toEqual([204, 204, 204, 429]);
  });
});

describe('per-principal limit', () => {
  it('counts a principal across IPs', async () => {
    const t = await app(
      { 'rateLimit.categories': tinyRead },
      { verifiers: { session: async (token) => (token === 's1' ? { kind: 'user', id: 'user-1' } : null) } },
    );
    const codes = [];
    for (let i = 0; i < 3; i++) {
      codes.push((await t.app.inject({ url: '/test/session', remoteAddress: `10.1.0.${i}`, headers: { authorization: 'Bearer s1' } })).statusCode);
    }
    expect(codes).toEqual([200, 200, 429]);
  });
});

describe('when the counter store fails', () => {
  function breakKv(t: TestApp): void {
    t.node.kv.hitSlidingWindow = async () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
    };
  }

  const item = '/test/items/00000000-0000-4000-8000-000000000000';

  it('closed (default): 503 SERVICE_UNAVAILABLE with Retry-After, nothing about Redis in the body', async () => {
    const t = await app({});
    breakKv(t);
    const res = await t.app.inject({ url: item });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('SERVICE_UNAVAILABLE');
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(res.body).not.toMatch(/ECONNREFUSED|6379|redis/i);
  });

  it('open: requests pass and the failure is logged', async () => {
    const t = await app({ 'rateLimit.onStoreError': 'open' });
    breakKv(t);
    expect((await t.app.inject({ url: item })).statusCode).toBe(200);
    expect(t.logText()).toContain('rate limit store unavailable');
  });

  it('closed: liveness is not counted at all, readiness still answers (ops routes are never refused for the store)', async () => {
    const t = await app({});
    let calls = 0;
    t.node.kv.hitSlidingWindow = async () => {
      calls += 1;
      throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
    };
    expect((await t.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect(calls).toBe(0);
    expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect(calls).toBe(1);
  });
});
