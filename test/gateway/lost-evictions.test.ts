/**
 * Lost cache evictions (GW-1, TEN-1) on two nodes sharing PostgreSQL and a private Redis this suite
 * stops and restarts empty. Node B caches an API key and a membership; the key is revoked and the
 * member removed through node A while Redis is down, so B never hears of it. B must refuse both at
 * once: while its subscription is down it reads the database, and when the subscription is back it
 * empties its caches. The nodes share a frozen clock and long cache lifetimes, so no entry expires:
 * only the control can explain a refusal. Node A's publishing is made to fail throughout (as if A
 * alone had lost Redis), so its retried eviction cannot explain it either.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../src/cli/runtime.ts';
import { DependencyUnavailableError } from '../../src/store/unavailable.ts';
import { mockProviders, VENDOR_KEYS } from '../support/gateway.ts';
import { startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { privateRedisSkipReason, startPrivateRedis, type PrivateService } from '../support/private-services.ts';
import { postgresTarget } from '../support/services.ts';
import { startTwoNodes, type TwoNodes } from '../support/two-nodes.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const skip = postgresTarget().skipReason ?? privateRedisSkipReason;
const chat = { model: 'mock-model', messages: [{ role: 'user', content: 'Say hello.' }] };

(skip ? describe.skip : describe)(`two nodes that miss evictions while Redis is down${skip ? `: ${skip}` : ''}`, () => {
  let redis: PrivateService | undefined;
  let vendor: MockVendor | undefined;
  let nodes: TwoNodes | undefined;
  let a: Node;
  let b: Node;
  let owner: SignedInUser;
  let org: string;
  let ws: string;
  const frozen = Date.now();

  beforeAll(async () => {
    redis = await startPrivateRedis();
    vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai, anthropicKey: VENDOR_KEYS.anthropic });
    nodes = await startTwoNodes({
      now: () => frozen,
      env: {
        REDIS_URL: redis.url,
        GATEHOUSE_RATE_LIMIT_ENABLED: 'false',
        GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ openai: VENDOR_KEYS.openai, faulty: VENDOR_KEYS.openai, anthropic: VENDOR_KEYS.anthropic }),
      },
      overrides: {
        'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
        'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
        'gateway.upstream.allowInsecureHttp': true,
        'gateway.providers': mockProviders(vendor.url),
        // Lifetimes no test outlives (and a frozen clock besides): expiry cannot explain a refusal.
        'gateway.keyCacheSeconds': 3600,
        'tenancy.authorityCacheSeconds': 300,
      },
    });
    ({ a, b } = nodes);
    owner = await signUpUser(a.app, nodes.mail, 'lost-evictions-owner@example.com');
    org = (await a.app.inject({ method: 'POST', url: `/v1/orgs`, payload: { name: 'Lost evictions' }, headers: owner.auth })).json().id;
    ws = (await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name: 'W' }, headers: owner.auth })).json().id;
  });

  /** Redis is running again after each test, whatever happened in it. */
  afterEach(async () => {
    if (redis && !(await a.kv.ping().then(() => true, () => false))) await redis.start().catch(() => undefined);
  });

  afterAll(async () => {
    await nodes?.close();
    await vendor?.close();
    await redis?.close();
  });

  /** Node A cannot publish (as if it alone had lost Redis) until the returned function is called. */
  function breakPublishingOnA(): () => void {
    const publish = a.kv.publish;
    a.kv.publish = async () => {
      throw new DependencyUnavailableError('kv', 'kv: Redis publish failed (test: node A lost Redis)');
    };
    return () => {
      a.kv.publish = publish;
    };
  }

  /** Polls (bounded in attempts) until node's subscription state is `live`. */
  async function untilSubscriptions(node: Node, live: boolean): Promise<void> {
    for (let attempt = 0; attempt < 200 && node.kv.subscriptionsLive() !== live; attempt++) await new Promise((r) => setTimeout(r, 50));
    expect(node.kv.subscriptionsLive()).toBe(live);
  }

  const callThrough = (node: Node, key: string): Promise<LightMyRequestResponse> =>
    node.app.inject({ method: 'POST', url: '/v1/chat/completions', payload: chat, headers: { authorization: `Bearer ${key}` } });

  function expectKeyRefused(res: LightMyRequestResponse): void {
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { type: 'authentication_error', code: 'invalid_api_key', param: null } });
  }

  it('attack: using on node B an API key revoked on node A while Redis was down (B had it cached) -> 401 invalid_api_key, during the outage and after Redis restarts empty', async () => {
    const created = await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'lost' }, headers: owner.auth });
    expect(created.statusCode).toBe(201);
    const { key, apiKey } = created.json() as { key: string; apiKey: { id: string } };
    expect((await callThrough(b, key)).statusCode).toBe(200);

    const restorePublishing = breakPublishingOnA();
    try {
      await redis?.stop();
      await untilSubscriptions(b, false);
      // Committed in the database; the eviction goes nowhere. The revocation still succeeds.
      expect((await a.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys/${apiKey.id}`, headers: owner.auth })).statusCode).toBe(204);
      const row = await a.db.withTenant(org, (tx) => tx.query<{ revoked: boolean }>('select revoked_at is not null as revoked from api_keys where id = $1', [apiKey.id]));
      expect(row.rows[0]?.revoked).toBe(true);
      // B's subscription is down: its cache is not used.
      expectKeyRefused(await callThrough(b, key));

      await redis?.start();
      await untilSubscriptions(b, true);
      // Back, having missed the eviction: the cache was emptied, the database answers.
      expectKeyRefused(await callThrough(b, key));
      expectKeyRefused(await callThrough(a, key));
    } finally {
      restorePublishing();
    }
  });

  it('attack: a member removed on node A while Redis was down keeps using the org through node B (B had the membership cached) -> 404 NOT_FOUND, during the outage and after Redis restarts empty', async () => {
    const member = await signUpUser(a.app, nodes?.mail ?? [], 'lost-evictions-member@example.com');
    await a.db.withTenant(org, (tx) => tx.query("insert into memberships (tenant_id, user_id, role) values ($1, $2, 'admin')", [org, member.userId]));
    expect((await b.app.inject({ url: `/v1/orgs/${org}`, headers: member.auth })).statusCode).toBe(200);

    const restorePublishing = breakPublishingOnA();
    try {
      await redis?.stop();
      await untilSubscriptions(b, false);
      expect((await a.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/members/${member.userId}`, headers: owner.auth })).statusCode).toBe(204);
      const during = await b.app.inject({ url: `/v1/orgs/${org}`, headers: member.auth });
      expect(during.statusCode).toBe(404);
      expect(during.json().error.code).toBe('NOT_FOUND');

      await redis?.start();
      await untilSubscriptions(b, true);
      const after = await b.app.inject({ url: `/v1/orgs/${org}`, headers: member.auth });
      expect(after.statusCode).toBe(404);
      expect(after.json().error.code).toBe('NOT_FOUND');
    } finally {
      restorePublishing();
    }
  });

  it('attack: using on node B a key revoked on node A while only A could not reach Redis -> the revocation answers 204 and B refuses (401 invalid_api_key) once A publishes again', async () => {
    await untilSubscriptions(b, true);
    const created = await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'publisher-only' }, headers: owner.auth });
    const { key, apiKey } = created.json() as { key: string; apiKey: { id: string } };
    expect((await callThrough(b, key)).statusCode).toBe(200);

    const restorePublishing = breakPublishingOnA();
    try {
      expect((await a.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys/${apiKey.id}`, headers: owner.auth })).statusCode).toBe(204);
    } finally {
      restorePublishing();
    }
    // A retries the eviction every second until Redis takes it; bounded by attempts, not by a clock.
    let res = await callThrough(b, key);
    for (let attempt = 0; attempt < 100 && res.statusCode !== 401; attempt++) {
      await new Promise((r) => setTimeout(r, 50));
      res = await callThrough(b, key);
    }
    expectKeyRefused(res);
  });
});
