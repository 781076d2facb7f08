/**
 * EDGE-5: every route declares its guard; every non-public route refuses a caller without
 * credentials with 401; the server refuses to start with an undeclared route.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestApp, type TestApp } from '../support/app.ts';
import { fixtureFeature } from '../support/fixture-feature.ts';
import { loadConfig } from '../../src/config/load.ts';
import { buildApp } from '../../src/server/app.ts';
import { createLogger } from '../../src/server/logger.ts';
import { defineRoute, type Feature, type RouteDef } from '../../src/server/route.ts';
import { ACCESS_COOKIE, CSRF_COOKIE } from '../../src/server/guards/session.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const CRON_SECRET = 'cron-secret-0123456789abcdef';

/** A state-changing route behind the session guard, for the cookie (CSRF) cases. */
const sessionWrite: Feature = {
  id: 'test-session-write',
  routes: [
    defineRoute({
      method: 'POST',
      url: '/test/session-write',
      summary: 'session guard, state-changing',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'write',
      schema: { body: z.strictObject({}), response: { 200: z.object({ user: z.string() }) } },
      handler: async ({ principal }) => ({ user: principal?.id ?? '' }),
    }),
  ],
};

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({
    extraFeatures: [fixtureFeature, sessionWrite],
    overrides: { 'rateLimit.enabled': false },
    env: { GATEHOUSE_METRICS_TOKEN: METRICS_TOKEN, GATEHOUSE_CRON_SECRET: CRON_SECRET },
    verifiers: {
      session: async (token) => (token === 'valid-session' ? { kind: 'user', id: 'u1' } : null),
      apiKey: async (key) => (key === 'gh_valid' ? { kind: 'apiKey', id: 'k1', scopes: ['ai:embeddings'] } : null),
      webhook: { test: async (req) => (req.headers['x-test-signature'] === 'good' ? { kind: 'webhook', id: 'test' } : null) },
    },
  });
});
afterAll(async () => t.close());

describe('guard audit: every non-public route without credentials is refused', () => {
  it('401 UNAUTHENTICATED on each, found from the route table (new routes are covered automatically)', async () => {
    const guarded = t.app.gatehouse.routes.filter((r) => r.guard.kind !== 'public');
    expect(guarded.map((r) => `${r.method} ${r.url}`)).toEqual(
      expect.arrayContaining(['GET /metrics', 'GET /test/session', 'POST /test/key', 'POST /test/webhook', 'POST /test/cron']),
    );
    for (const route of guarded) {
      const url = route.url.replace(/:[a-zA-Z]+/g, '00000000-0000-4000-8000-000000000000');
      const res = await t.app.inject({ method: route.method as 'GET', url, ...(route.hasBody ? { payload: {} } : {}) });
      // Routes serving another API's SDKs (the AI gateway) refuse in that API's error shape.
      // The MCP endpoint answers JSON-RPC error objects, the Gatehouse code in error.data.code.
      const body = res.json();
      const jsonRpc = route.errorFormat?.name === 'json-rpc';
      const vendor = route.errorFormat !== undefined && !jsonRpc;
      expect({ route: `${route.method} ${route.url}`, status: res.statusCode, code: vendor ? body.error?.type : jsonRpc ? body.error?.data?.code : body.error?.code }).toEqual({
        route: `${route.method} ${route.url}`,
        status: 401,
        code: vendor ? 'authentication_error' : 'UNAUTHENTICATED',
      });
    }
    expect(guarded.filter((r) => r.errorFormat).map((r) => `${r.errorFormat?.name} ${r.url}`)).toEqual(expect.arrayContaining(['openai /v1/chat/completions', 'anthropic /v1/messages']));
  });

  it('every route in the table declares a guard, a permission slot and a rate category', () => {
    for (const r of t.app.gatehouse.routes) {
      expect(r.guard.kind).toBeTruthy();
      expect(r.permission === null || typeof r.permission === 'string').toBe(true);
      expect(r.rateCategory).toBeTruthy();
    }
  });
});

describe('guards let the right credentials through', () => {
  it('session: a token the verifier accepts passes; a forged one is refused', async () => {
    expect((await t.app.inject({ url: '/test/session', headers: { authorization: 'Bearer valid-session' } })).json()).toEqual({ user: 'u1' });
    expect((await t.app.inject({ url: '/test/session', headers: { authorization: 'Bearer forged' } })).statusCode).toBe(401);
    expect((await t.app.inject({ url: '/test/session', headers: { authorization: 'Basic dTpw' } })).statusCode).toBe(401);
  });

  it('apiKey: a valid key without the route scope is refused with 403 FORBIDDEN', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/test/key', payload: { prompt: 'x' }, headers: { 'x-api-key': 'gh_valid' } });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('FORBIDDEN');
  });

  it('metrics: the configured token passes, a wrong one of the same length does not', async () => {
    expect((await t.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).statusCode).toBe(200);
    const wrong = METRICS_TOKEN.slice(0, -1) + 'X';
    expect((await t.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${wrong}` } })).statusCode).toBe(401);
  });

  it('cron: the configured secret passes, anything else is refused', async () => {
    expect((await t.app.inject({ method: 'POST', url: '/test/cron', payload: {}, headers: { authorization: `Bearer ${CRON_SECRET}` } })).json()).toEqual({ ran: true });
    expect((await t.app.inject({ method: 'POST', url: '/test/cron', payload: {}, headers: { authorization: 'Bearer guess' } })).statusCode).toBe(401);
  });

  it('webhook: the provider verifier decides', async () => {
    expect((await t.app.inject({ method: 'POST', url: '/test/webhook', payload: {}, headers: { 'x-test-signature': 'good' } })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/test/webhook', payload: {}, headers: { 'x-test-signature': 'bad' } })).statusCode).toBe(401);
  });
});

describe('the server refuses to start with an undeclared route', () => {
  const base = {
    method: 'GET' as const,
    url: '/v1/undeclared',
    summary: 'x',
    guard: { kind: 'public' as const },
    permission: null,
    rateCategory: 'read' as const,
    schema: { response: { 200: z.object({}) } },
    handler: async () => ({}),
  };
  const cases: [string, Partial<RouteDef>, RegExp][] = [
    ['no guard', { guard: undefined }, /route GET \/v1\/undeclared declares no guard/],
    ['no permission slot', { permission: undefined }, /route GET \/v1\/undeclared declares no permission/],
    ['no rate category', { rateCategory: undefined }, /declares no rate category/],
    ['no response schema', { schema: { response: {} } }, /declares no response schema/],
    ['a body route without a body schema', { method: 'POST', schema: { response: { 200: z.object({}) } } }, /route POST \/v1\/undeclared declares no body schema/],
    ['a path parameter without a params schema', { url: '/v1/undeclared/:id' }, /declares no params schema/],
  ];
  for (const [name, patch, message] of cases) {
    it(name, async () => {
      const feature: Feature = { id: 'broken', routes: [defineRoute({ ...base, ...patch } as RouteDef)] };
      await expect(createTestApp({ extraFeatures: [feature] })).rejects.toThrow(message);
    });
  }
});

describe('a route a plugin registers without a declared guard refuses the start', () => {
  /** buildApp alone (no storage is opened before ready), so a test can register a plugin in between. */
  async function bareApp() {
    const { config } = loadConfig({ env: {}, configFile: undefined, cwd: '/nonexistent-gatehouse-test-dir', overrides: { 'rateLimit.enabled': false } });
    const logger = createLogger({ level: 'silent' });
    return buildApp({ config, logger, db: {} as never, kv: {} as never, keyring: {} as never, signingKeys: {} as never, features: [fixtureFeature] });
  }

  it('attack: a fastify plugin adds GET /plugin/sneaky with no guard: ready() refuses naming it', async () => {
    const app = await bareApp();
    await app.register(
      async (plugin) => {
        plugin.get('/sneaky', async () => ({ secret: true }));
      },
      { prefix: '/plugin' },
    );
    await expect(app.ready()).rejects.toThrow('refusing to start: route GET /plugin/sneaky declares no guard');
    await app.close().catch(() => undefined);
  });

  it('the same app without the plugin starts', async () => {
    const app = await bareApp();
    await expect(app.ready()).resolves.toBeDefined();
    await app.close();
  });
});

describe('CSRF on a cookie session without an Origin header (Sec-Fetch-Site decides)', () => {
  const cookies = `${ACCESS_COOKIE}=valid-session; ${CSRF_COOKIE}=csrf-token-0123456789`;
  const post = (headers: Record<string, string>) =>
    t.app.inject({ method: 'POST', url: '/test/session-write', payload: {}, headers: { cookie: cookies, ...headers } });

  it('attack: a cross-site form or fetch (Sec-Fetch-Site cross-site or same-site, or none sent) with the right token: 403 CSRF_FAILED', async () => {
    for (const site of ['cross-site', 'same-site', undefined]) {
      const res = await post({ 'x-csrf-token': 'csrf-token-0123456789', ...(site ? { 'sec-fetch-site': site } : {}) });
      expect({ site, status: res.statusCode, code: res.json().error?.code }).toEqual({ site, status: 403, code: 'CSRF_FAILED' });
    }
  });

  it('same-origin with the CSRF token is accepted; same-origin without it is refused', async () => {
    const ok = await post({ 'sec-fetch-site': 'same-origin', 'x-csrf-token': 'csrf-token-0123456789' });
    expect({ status: ok.statusCode, body: ok.json() }).toEqual({ status: 200, body: { user: 'u1' } });
    const noToken = await post({ 'sec-fetch-site': 'same-origin' });
    expect({ status: noToken.statusCode, code: noToken.json().error?.code }).toEqual({ status: 403, code: 'CSRF_FAILED' });
  });
});
