/**
 * Reload without restart (OPS-3) for the options features read: `rateLimit.onStoreError`, the
 * budget defaults (`budgets.onStoreError`, `defaultMaxTokens`, `reservationTtlSeconds`,
 * `definitionCacheSeconds`), the guard's external classifier (`guard.external.*`) and the social
 * providers with their client secrets. Each test proves the new value is used on the next request
 * and that a bad reload is refused whole, the old value kept.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../support/app.ts';
import { createApiKey, createOrgAndWorkspace, mockProviders, VENDOR_KEYS } from '../support/gateway.ts';
import { startMockVendor } from '../support/mock-vendor.ts';
import { followToOrigin } from '../support/oidc-idp.ts';
import { signUpUser } from '../support/users.ts';
import { SOCIAL_STATE_COOKIE } from '../../src/identity/social.ts';
import { TRUST } from '../../src/trust/index.ts';

const opened: { close: () => Promise<void> }[] = [];
afterAll(async () => {
  for (const o of opened.reverse()) await o.close();
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  opened.push({
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const codeOf = (res: { json: () => unknown }): string | undefined => (res.json() as { error?: { code?: string } }).error?.code;

/** A node with the mock vendor as its only platform provider, reloading from `overrides`. */
async function gatewayNode(overrides: Record<string, unknown>, now?: () => number) {
  const vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai });
  opened.push(vendor);
  Object.assign(overrides, {
    'rateLimit.enabled': false,
    'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
    'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
    'gateway.upstream.allowInsecureHttp': true,
    'gateway.providers': mockProviders(vendor.url).filter((p) => (p as { id: string }).id === 'openai'),
  });
  const t = await createTestApp({ reloadable: true, overrides, env: { GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ openai: VENDOR_KEYS.openai }) }, ...(now ? { now } : {}) });
  opened.push(t);
  const owner = await signUpUser(t.app, t.mail, `reload-${randomBytes(4).toString('hex')}@example.com`);
  const { org, ws } = await createOrgAndWorkspace(t, owner, 'Reload features');
  const { key } = await createApiKey(t, owner, org, ws);
  const call = (content = 'Please summarise the attached meeting notes in three bullet points.') =>
    t.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { authorization: `Bearer ${key}` }, payload: { model: 'mock-model', messages: [{ role: 'user', content }] } });
  return { t, owner, org, ws, call };
}

describe('reload without restart: options features read', () => {
  it('rateLimit.onStoreError: with the counter store down, closed answers 503 and open lets the next request through; a bad reload keeps open', async () => {
    const overrides: Record<string, unknown> = {};
    const t = await createTestApp({ reloadable: true, overrides });
    opened.push(t);
    const kv = t.node.kv as { hitSlidingWindow: unknown };
    const hit = kv.hitSlidingWindow;
    kv.hitSlidingWindow = () => Promise.reject(new Error('counter store down'));
    try {
      const closed = await t.app.inject({ url: '/openapi.json' });
      expect({ status: closed.statusCode, code: codeOf(closed) }).toEqual({ status: 503, code: 'SERVICE_UNAVAILABLE' });
      overrides['rateLimit.onStoreError'] = 'open';
      const outcome = await t.node.use(TRUST).reload('api');
      expect(outcome.changed).toEqual(['rateLimit.onStoreError']);
      expect((await t.app.inject({ url: '/openapi.json' })).statusCode).toBe(200);
      // Back to closed together with an invalid limit: refused whole, open stays.
      overrides['rateLimit.onStoreError'] = 'closed';
      overrides['rateLimit.categories'] = { read: { ip: { limit: 0, windowSeconds: 60 }, principal: { limit: 1, windowSeconds: 60 } } };
      expect((await t.node.use(TRUST).reload('api')).status).toBe('refused');
      expect((await t.app.inject({ url: '/openapi.json' })).statusCode).toBe(200);
      expect(t.node.live.current().rateLimit.onStoreError).toBe('open');
    } finally {
      kv.hitSlidingWindow = hit;
    }
  }, 120_000);

  it('budget defaults: a new defaultMaxTokens, reservationTtlSeconds, onStoreError and definitionCacheSeconds apply on the next call; a bad reload keeps them all', async () => {
    let skewMs = 0;
    const overrides: Record<string, unknown> = {};
    const { t, owner, org, call } = await gatewayNode(overrides, () => Date.now() + skewMs);
    const put = await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/budgets`, payload: { category: 'ai_tokens', period: 'month', hardLimit: 1000 }, headers: owner.auth });
    expect(put.statusCode).toBe(200);
    // No max_tokens: the default 4096 output tokens are reserved, more than the budget.
    const refused = await call();
    expect({ status: refused.statusCode, code: codeOf(refused) }).toEqual({ status: 429, code: 'budget_exceeded_ai_tokens' }); // the vendor (OpenAI) shape of BUDGET_AI_TOKENS_EXCEEDED
    overrides['budgets.defaultMaxTokens'] = 50;
    expect((await t.node.use(TRUST).reload('api')).changed).toEqual(['budgets.defaultMaxTokens']);
    expect((await call()).statusCode).toBe(200);
    const ttlOfLast = async () =>
      (await t.node.db.asOwner((tx) => tx.query<{ ttl: number }>('select extract(epoch from expires_at - created_at)::int as ttl from budget_ledger order by created_at desc limit 1'))).rows[0]?.ttl;
    expect(await ttlOfLast()).toBe(900);
    overrides['budgets.reservationTtlSeconds'] = 120;
    await t.node.use(TRUST).reload('api');
    expect((await call()).statusCode).toBe(200);
    expect(await ttlOfLast()).toBe(120);

    const kv = t.node.kv as { reserveBudget: unknown };
    const reserve = kv.reserveBudget;
    kv.reserveBudget = () => Promise.reject(new Error('counter store down'));
    try {
      const down = await call();
      expect({ status: down.statusCode, code: codeOf(down) }).toEqual({ status: 503, code: 'service_unavailable' });
      overrides['budgets.onStoreError'] = 'open';
      await t.node.use(TRUST).reload('api');
      expect((await call()).statusCode).toBe(200);
    } finally {
      kv.reserveBudget = reserve;
    }

    // A bad candidate (a zero default) with a good change: refused whole, the running values stay.
    overrides['budgets.defaultMaxTokens'] = 0;
    overrides['budgets.onStoreError'] = 'closed';
    const bad = await t.node.use(TRUST).reload('api');
    expect(bad.status).toBe('refused');
    expect(bad.reason).toContain('budgets.defaultMaxTokens');
    expect(t.node.live.current().budgets).toMatchObject({ defaultMaxTokens: 50, onStoreError: 'open', reservationTtlSeconds: 120 });
    expect((await call()).statusCode).toBe(200);
    overrides['budgets.defaultMaxTokens'] = 50;
    overrides['budgets.onStoreError'] = 'open';

    // The definitions are cached for definitionCacheSeconds (60): a change behind the node's back is
    // not seen for a minute, until a shorter cache time is reloaded.
    await t.node.db.asOwner((tx) => tx.query('update budgets set hard_limit = 1 where tenant_id = $1', [org]));
    skewMs += 2_000;
    expect((await call()).statusCode).toBe(200);
    overrides['budgets.definitionCacheSeconds'] = 1;
    expect((await t.node.use(TRUST).reload('api')).changed).toEqual(['budgets.definitionCacheSeconds']);
    skewMs += 2_000;
    expect((await call()).statusCode).toBe(429);
  }, 120_000);

  it('guard.external: a classifier added by reload judges the next call, a new token is sent on the next call, and a bad reload keeps both', async () => {
    const seen: string[] = [];
    const classifier = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push(req.headers.authorization ?? '');
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ score: 0.99 }));
      });
    });
    const url = await listen(classifier);
    const overrides: Record<string, unknown> = {};
    const { t, call } = await gatewayNode(overrides);
    expect((await call()).statusCode).toBe(200);
    expect(seen).toEqual([]);
    const tokenA = ['classifier', 'token', 'A'.repeat(16)].join('-');
    const tokenB = ['classifier', 'token', 'B'.repeat(16)].join('-');
    overrides['guard.external.url'] = `${url}/classify`;
    overrides['guard.external.token'] = tokenA;
    expect((await t.node.use(TRUST).reload('api')).changed.sort()).toEqual(['guard.external.token', 'guard.external.url']);
    const blocked = await call();
    expect({ status: blocked.statusCode, code: codeOf(blocked) }).toEqual({ status: 400, code: 'guard_blocked' }); // GUARD_BLOCKED in the OpenAI shape
    expect(seen.at(-1)).toBe(`Bearer ${tokenA}`);
    overrides['guard.external.token'] = tokenB;
    await t.node.use(TRUST).reload('api');
    await call();
    expect(seen.at(-1)).toBe(`Bearer ${tokenB}`);
    // A timeout below the minimum with a new token: refused whole.
    overrides['guard.external.token'] = tokenA;
    overrides['guard.external.timeoutMs'] = 1;
    expect((await t.node.use(TRUST).reload('api')).status).toBe('refused');
    await call();
    expect(seen.at(-1)).toBe(`Bearer ${tokenB}`);
    expect(t.logText()).not.toContain(tokenB);
  }, 120_000);

  it('social providers and client secrets: a provider added by reload signs in, a rotated secret is used from the next sign-in (one under way finishes), a bad reload keeps the old', async () => {
    const ORIGIN = 'https://gatehouse.test';
    const accepted = new Set<string>();
    const used: string[] = [];
    const tokens = new Map<string, number>();
    let nextId = 1;
    const idp = createServer((req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://idp');
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === '/authorize') {
        const back = new URL(url.searchParams.get('redirect_uri') ?? '');
        back.searchParams.set('code', randomBytes(8).toString('hex'));
        back.searchParams.set('state', url.searchParams.get('state') ?? '');
        res.writeHead(302, { location: back.href });
        return void res.end();
      }
      if (url.pathname === '/token') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const secret = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('client_secret') ?? '';
          used.push(secret);
          if (!accepted.has(secret)) return json(400, { error: 'invalid_client' });
          const token = randomBytes(8).toString('hex');
          tokens.set(token, nextId++);
          json(200, { access_token: token, token_type: 'bearer' });
        });
        return;
      }
      const id = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /i, ''));
      if (id === undefined) return json(401, {});
      json(200, { id: String(id), email: `social-reload-${id}@example.com`, verified: true });
    });
    const idpUrl = await listen(idp);
    const overrides: Record<string, unknown> = { 'rateLimit.enabled': false, 'server.publicUrl': ORIGIN, 'social.allowInsecureRequests': true };
    const t = await createTestApp({ reloadable: true, overrides });
    opened.push(t);
    const start = () => t.app.inject({ url: '/v1/auth/social/acme/start' });
    const unknown = await start();
    expect({ status: unknown.statusCode, code: codeOf(unknown) }).toEqual({ status: 404, code: 'SOCIAL_PROVIDER_UNKNOWN' });

    const secret1 = randomBytes(16).toString('hex');
    const secret2 = randomBytes(16).toString('hex');
    accepted.add(secret1);
    overrides['social.providers'] = [
      { id: 'acme', kind: 'oauth2', clientId: 'gatehouse', authorizationEndpoint: `${idpUrl}/authorize`, tokenEndpoint: `${idpUrl}/token`, userinfoEndpoint: `${idpUrl}/user`, subjectField: 'id', emailField: 'email', verifiedField: 'verified' },
    ];
    overrides['social.clientSecrets'] = { acme: secret1 };
    expect((await t.node.use(TRUST).reload('api')).changed.sort()).toEqual(['social.clientSecrets', 'social.providers']);
    /** Starts a sign-in; returns its finish (the callback at Gatehouse). */
    const begin = async () => {
      const res = await start();
      expect(res.statusCode).toBe(302);
      const cookie = res.cookies.find((c) => c.name === SOCIAL_STATE_COOKIE)?.value ?? '';
      const path = await followToOrigin(String(res.headers.location), ORIGIN, new Map());
      return () => t.app.inject({ url: path, cookies: { [SOCIAL_STATE_COOKIE]: cookie } });
    };
    expect((await (await begin())()).statusCode).toBe(200);
    expect(used.at(-1)).toBe(secret1);

    // Rotation in the operator's order: the provider takes both, the node reloads, the provider drops the old.
    const underWay = await begin();
    accepted.add(secret2);
    overrides['social.clientSecrets'] = { acme: secret2 };
    expect((await t.node.use(TRUST).reload('api')).changed).toEqual(['social.clientSecrets']);
    expect((await underWay()).statusCode).toBe(200);
    accepted.delete(secret1);
    expect((await (await begin())()).statusCode).toBe(200);
    expect(used.at(-1)).toBe(secret2);

    overrides['social.clientSecrets'] = { acme: '' };
    const bad = await t.node.use(TRUST).reload('api');
    expect(bad.status).toBe('refused');
    expect(bad.reason).toContain('social.clientSecrets');
    expect((await (await begin())()).statusCode).toBe(200);
    expect(used.at(-1)).toBe(secret2);
    expect(t.logText()).not.toContain(secret2);
  }, 120_000);
});
