/**
 * A failure to check is never "invalid credential" (AUTH-3, OPS-2, ABUSE-1).
 *
 * PostgreSQL outage: a private PostgreSQL (initdb into a temp dir, free port) that the test stops
 * (fast shutdown, by PID) while authenticated requests run. No request on an authenticated route
 * may answer 401 or 500: each is served (from caches) or refused 503 + Retry-After with a stable
 * code, in the vendor's error shape on AI routes. A forged token is still never accepted. When
 * PostgreSQL is back, everything works again.
 *
 * Redis outage: a private redis-server the test stops. /healthz stays 200 (it touches no
 * dependency and is not counted in Redis); /readyz answers 503 naming redis; and per
 * `rateLimit.onStoreError` each route category answers as the README documents.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createApiKey, createOrgAndWorkspace, startGatewayApp, type GatewayTestApp } from '../support/gateway.ts';
import { privatePostgresSkipReason, privateRedisSkipReason, startPrivatePostgres, startPrivateRedis, type PrivateService } from '../support/private-services.ts';
import { signUpUser, TEST_PASSWORD, type SignedInUser } from '../support/users.ts';

type Shape = 'gatehouse' | 'openai' | 'anthropic';

interface Probe {
  name: string;
  shape: Shape;
  send: () => Promise<LightMyRequestResponse>;
}

/** A 503 the way its route's clients understand it, with Retry-After. */
function expectUnavailable(res: LightMyRequestResponse, probe: Probe): void {
  expect(res.statusCode, `${probe.name}: ${res.body}`).toBe(503);
  expect(Number(res.headers['retry-after']), `${probe.name} Retry-After`).toBeGreaterThanOrEqual(1);
  const body = res.json();
  if (probe.shape === 'gatehouse') expect(body.error.code).toBe('SERVICE_UNAVAILABLE');
  if (probe.shape === 'openai') expect(body.error).toMatchObject({ type: 'server_error', code: 'service_unavailable' });
  if (probe.shape === 'anthropic') expect(body).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
}

(privatePostgresSkipReason ? describe.skip : describe)(`PostgreSQL stops under load${privatePostgresSkipReason ? `: ${privatePostgresSkipReason}` : ''}`, () => {
  let pg: PrivateService | undefined;
  let t: GatewayTestApp | undefined;
  let user: SignedInUser;
  let apiKey: string;
  // The node's clock: moved past the verifier's key-set cache during the outage, so the access
  // token's key must be fetched from the stopped database (as in a real outage of over 10 s).
  const clock = { offsetMs: 0 };

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    t = await startGatewayApp({ env: { DATABASE_URL: pg.url }, overrides: { 'rateLimit.enabled': false }, now: () => Date.now() + clock.offsetMs });
    user = await signUpUser(t.app, t.mail, 'outage@example.com');
    const { org, ws } = await createOrgAndWorkspace(t, user, 'Outage Co');
    apiKey = (await createApiKey(t, user, org, ws, { scopes: ['ai:chat', 'ai:embeddings', 'ai:models'] })).key;
  });

  afterAll(async () => {
    await t?.close();
    await pg?.close();
  });

  function probes(round: number): Probe[] {
    const app = (t as GatewayTestApp).app;
    const key = { authorization: `Bearer ${apiKey}` };
    const chat = { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] };
    return [
      { name: 'GET /v1/me', shape: 'gatehouse', send: () => app.inject({ url: '/v1/me', headers: user.auth }) },
      { name: 'GET /v1/orgs', shape: 'gatehouse', send: () => app.inject({ url: '/v1/orgs', headers: user.auth }) },
      { name: 'POST /v1/orgs', shape: 'gatehouse', send: () => app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: `During ${round}` }, headers: user.auth }) },
      {
        name: 'POST /v1/auth/login',
        shape: 'gatehouse',
        send: () => app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'outage@example.com', password: TEST_PASSWORD }, remoteAddress: `192.0.2.${round + 1}` }),
      },
      { name: 'GET /v1/models', shape: 'openai', send: () => app.inject({ url: '/v1/models', headers: key }) },
      { name: 'POST /v1/chat/completions', shape: 'openai', send: () => app.inject({ method: 'POST', url: '/v1/chat/completions', payload: chat, headers: key }) },
      { name: 'POST /v1/embeddings', shape: 'openai', send: () => app.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'mock-embed', input: 'hi' }, headers: key }) },
      {
        name: 'POST /v1/messages',
        shape: 'anthropic',
        send: () => app.inject({ method: 'POST', url: '/v1/messages', payload: { model: 'mock-model', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }, headers: { 'x-api-key': apiKey, 'anthropic-version': '2023-06-01' } }),
      },
    ];
  }

  it('attack: riding a database outage -> no 401 and no 500 on authenticated routes, only 503 + Retry-After; a forged token is never let in; recovery after restart', async () => {
    const app = (t as GatewayTestApp).app;
    const results: { probe: Probe; res: LightMyRequestResponse }[] = [];
    const round = async (n: number): Promise<void> => {
      const batch = probes(n);
      const answers = await Promise.all(batch.map((p) => p.send()));
      answers.forEach((res, i) => results.push({ probe: batch[i] as Probe, res }));
    };
    // Requests are in flight while PostgreSQL shuts down, then keep coming while it is down.
    await Promise.all([pg?.stop(), round(0), round(1)]);
    await round(2);
    clock.offsetMs = 11_000;
    for (let n = 3; n < 6; n++) await round(n);

    let unavailable = 0;
    for (const { probe, res } of results) {
      expect([401, 500], `${probe.name} answered ${res.statusCode}: ${res.body}`).not.toContain(res.statusCode);
      if (res.statusCode >= 400) {
        expectUnavailable(res, probe);
        unavailable += 1;
      }
    }
    // The outage was seen (the later rounds cannot all be served from caches).
    expect(unavailable).toBeGreaterThan(0);
    for (const probe of probes(9).filter((p) => p.name === 'GET /v1/me' || p.name === 'POST /v1/auth/login')) expectUnavailable(await probe.send(), probe);

    // A forged token during the outage: a failure to check is not a pass either.
    const [h, p] = user.access.split('.');
    const forged = await app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${h}.${p}.${'A'.repeat(86)}` } });
    expect([401, 503]).toContain(forged.statusCode);

    await pg?.start();
    let ready = 0;
    for (let attempt = 0; attempt < 100 && ready !== 200; attempt++) {
      ready = (await app.inject({ url: '/readyz' })).statusCode;
      if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready).toBe(200);
    expect((await app.inject({ url: '/v1/me', headers: user.auth })).statusCode).toBe(200);
    const login = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'outage@example.com', password: TEST_PASSWORD }, remoteAddress: '192.0.2.200' });
    expect(login.statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/models', headers: { authorization: `Bearer ${apiKey}` } })).statusCode).toBe(200);
  });
});

(privateRedisSkipReason ? describe.skip : describe)(`Redis stops${privateRedisSkipReason ? `: ${privateRedisSkipReason}` : ''}`, () => {
  let redis: PrivateService | undefined;
  const apps: Partial<Record<'closed' | 'open', { t: TestApp; user: SignedInUser }>> = {};

  beforeAll(async () => {
    redis = await startPrivateRedis();
    for (const mode of ['closed', 'open'] as const) {
      const t = await createTestApp({ env: { REDIS_URL: redis.url, GATEHOUSE_KV_KEY_PREFIX: `${mode}:` }, overrides: { 'rateLimit.onStoreError': mode } });
      apps[mode] = { t, user: await signUpUser(t.app, t.mail, `redis-${mode}@example.com`) };
    }
    await redis.stop();
  });

  afterAll(async () => {
    for (const entry of Object.values(apps)) await entry?.t.close();
    await redis?.close();
  });

  const gatehouse = (name: string): Probe => ({ name, shape: 'gatehouse', send: async () => undefined as never });

  it.each(['closed', 'open'] as const)('%s: /healthz 200, /readyz 503 naming redis', async (mode) => {
    const { t } = apps[mode] as { t: TestApp };
    expect((await t.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const ready = await t.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'not_ready', checks: { storage: 'ok', kv: 'unavailable' }, unavailable: ['redis'] });
    expect(Number(ready.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('closed: every rate-limited category refuses 503 SERVICE_UNAVAILABLE + Retry-After (public read, session read, sign-in, write)', async () => {
    const { t, user } = apps.closed as { t: TestApp; user: SignedInUser };
    expectUnavailable(await t.app.inject({ url: '/.well-known/security.txt' }), gatehouse('public read'));
    expectUnavailable(await t.app.inject({ url: '/v1/me', headers: user.auth }), gatehouse('session read'));
    expectUnavailable(await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: user.email, password: TEST_PASSWORD } }), gatehouse('sign-in'));
    expectUnavailable(await t.app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'x' }, headers: user.auth }), gatehouse('write'));
  });

  it('open: limits are skipped, sessions are checked in the database; what needs Redis itself (sign-in throttling) refuses 503, never 500', async () => {
    const { t, user } = apps.open as { t: TestApp; user: SignedInUser };
    expect((await t.app.inject({ url: '/.well-known/security.txt' })).statusCode).toBe(200);
    expect((await t.app.inject({ url: '/v1/me', headers: user.auth })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'During a Redis outage' }, headers: user.auth })).statusCode).toBe(201);
    expectUnavailable(await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: user.email, password: TEST_PASSWORD } }), gatehouse('sign-in'));
    // A logout still lands in the database, and the token is refused at once even with Redis down.
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/logout', payload: {}, headers: user.auth })).statusCode).toBe(200);
    const after = await t.app.inject({ url: '/v1/me', headers: user.auth });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe('UNAUTHENTICATED');
  });

  it('Redis back: /readyz 200 again', async () => {
    await redis?.start();
    for (const mode of ['closed', 'open'] as const) {
      const { t } = apps[mode] as { t: TestApp };
      let status = 0;
      for (let attempt = 0; attempt < 100 && status !== 200; attempt++) {
        status = (await t.app.inject({ url: '/readyz' })).statusCode;
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(200);
    }
  });
});
