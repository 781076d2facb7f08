/**
 * Two Gatehouse nodes sharing PostgreSQL and Redis (GW-1, ABUSE-1): an API key revoked on one node
 * is refused on the other within a second although the other had it cached; a workspace's routing
 * changed on one node applies on the other at once; the monthly limit is counted across both; the
 * usage report sees both nodes' calls; concurrent calls at the limit on both nodes never exceed it;
 * the limit survives the counter store losing its keys (deleted, or a private Redis restarted
 * without persistence), and a counter store that is down refuses with 503 + Retry-After. Runs in
 * CI (DATABASE_URL and REDIS_URL); skipped locally without them.
 */
import type { AddressInfo } from 'node:net';
import OpenAI, { AuthenticationError, RateLimitError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../src/cli/runtime.ts';
import { monthOf } from '../../src/gateway/metering.ts';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { mockProviders, VENDOR_KEYS } from '../support/gateway.ts';
import { startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { privateRedisSkipReason, startPrivateRedis, type PrivateService } from '../support/private-services.ts';
import { startTwoNodes, twoNodeSkipReason as skip, type TwoNodes } from '../support/two-nodes.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const messages = [{ role: 'user' as const, content: 'Say hello.' }];

const providerOverrides = (vendorUrl: string): Record<string, unknown> => ({
  'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
  'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
  'gateway.upstream.allowInsecureHttp': true,
  'gateway.providers': mockProviders(vendorUrl),
});
const providerKeys = { GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ openai: VENDOR_KEYS.openai, faulty: VENDOR_KEYS.openai, anthropic: VENDOR_KEYS.anthropic }) };

/** The OpenAI error code of a rejected call (fails the test when the call succeeded). */
async function refusal(promise: Promise<unknown>): Promise<{ status: number | undefined; code: string | null | undefined; retryAfter: string | null | undefined }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { status?: number; code?: string | null; headers?: Headers };
    return { status: e.status, code: e.code, retryAfter: e.headers?.get('retry-after') };
  }
  throw new Error('expected a refusal');
}

/** Calls of `count` that went through, spread over both URLs at once. */
async function concurrentSuccesses(urls: readonly string[], key: string, count: number): Promise<{ ok: number; codes: (string | null | undefined)[] }> {
  const results = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => new OpenAI({ apiKey: key, baseURL: `${urls[i % urls.length]}/v1`, maxRetries: 0, timeout: 10_000 }).chat.completions.create({ model: 'mock-model', messages })),
  );
  return {
    ok: results.filter((r) => r.status === 'fulfilled').length,
    codes: results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code?: string | null }).code] : [])),
  };
}

(skip ? describe.skip : describe)(`the gateway on two nodes, PostgreSQL + Redis${skip ? `: ${skip}` : ''}`, () => {
  let nodes: TwoNodes | undefined;
  let a: Node;
  let b: Node;
  let urlA: string;
  let urlB: string;
  let vendor: MockVendor;
  let owner: SignedInUser;
  let org: string;
  let ws: string;
  let mail: MailMessage[] = [];

  beforeAll(async () => {
    vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai, anthropicKey: VENDOR_KEYS.anthropic });
    nodes = await startTwoNodes({
      env: { GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ openai: VENDOR_KEYS.openai, faulty: VENDOR_KEYS.openai, anthropic: VENDOR_KEYS.anthropic }) },
      overrides: {
        'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
        'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
        'gateway.upstream.allowInsecureHttp': true,
        'gateway.providers': mockProviders(vendor.url),
        // Long cache lifetimes: only eviction messages can explain a change seen within a second.
        'gateway.keyCacheSeconds': 3600,
      },
    });
    ({ a, b, mail } = nodes);
    for (const node of [a, b]) await node.app.listen({ port: 0, host: '127.0.0.1' });
    urlA = `http://127.0.0.1:${(a.app.server.address() as AddressInfo).port}`;
    urlB = `http://127.0.0.1:${(b.app.server.address() as AddressInfo).port}`;
    owner = await signUpUser(a.app, mail, 'gateway-two-nodes@example.com');
    org = (await a.app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'Two nodes' }, headers: owner.auth })).json().id;
    ws = (await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name: 'W' }, headers: owner.auth })).json().id;
  });

  afterAll(async () => {
    await nodes?.close();
    await vendor?.close();
  });

  const client = (url: string, apiKey: string): OpenAI => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0, timeout: 10_000 });

  async function createKey(body: object = {}): Promise<{ key: string; id: string }> {
    const res = await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'k', ...body }, headers: owner.auth });
    expect(res.statusCode).toBe(201);
    return { key: res.json().key, id: res.json().apiKey.id };
  }

  /** Milliseconds until `check` holds, polling; Infinity after a second. */
  async function within1s(check: () => Promise<boolean>): Promise<number> {
    const t0 = Date.now();
    while (Date.now() - t0 < 1000) if (await check()) return Date.now() - t0;
    return Infinity;
  }

  it('a key revoked on node A is refused on node B within a second, though B had it cached', async () => {
    const { key, id } = await createKey();
    expect((await client(urlB, key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expect((await client(urlA, key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expect((await a.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys/${id}`, headers: owner.auth })).statusCode).toBe(204);
    const refused = await within1s(async () =>
      client(urlB, key)
        .chat.completions.create({ model: 'mock-model', messages })
        .then(
          () => false,
          (err: unknown) => err instanceof AuthenticationError,
        ),
    );
    expect(refused).toBeLessThan(1000);
  });

  it('a workspace\'s model routing changed on node A applies on node B at once', async () => {
    const { key } = await createKey();
    expect((await client(urlB, key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    const put = await a.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/models`, payload: { allowedModels: ['mock-embed'] }, headers: owner.auth });
    expect(put.statusCode).toBe(200);
    const narrowed = await within1s(async () =>
      client(urlB, key)
        .chat.completions.create({ model: 'mock-model', messages })
        .then(
          () => false,
          (err: unknown) => (err as { status?: number }).status === 404,
        ),
    );
    expect(narrowed).toBeLessThan(1000);
    await a.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/models`, payload: {}, headers: owner.auth });
  });

  it('the monthly limit counts calls on both nodes; the usage report sees both', async () => {
    const { key, id } = await createKey({ monthlyLimit: 3 });
    await client(urlA, key).chat.completions.create({ model: 'mock-model', messages });
    await client(urlB, key).chat.completions.create({ model: 'mock-model', messages });
    await client(urlA, key).embeddings.create({ model: 'mock-embed', input: 'x', encoding_format: 'float' });
    await expect(client(urlB, key).chat.completions.create({ model: 'mock-model', messages })).rejects.toBeInstanceOf(RateLimitError);
    await b.gateway.meter.flush();
    const report = (await a.app.inject({ url: `/v1/orgs/${org}/usage`, headers: owner.auth })).json();
    expect(report.keys.find((k: { keyId: string }) => k.keyId === id)).toMatchObject({ requests: 3, failedRequests: 0 });
  });

  it('attack: 20 concurrent calls at a limit of 5, spread over both nodes: exactly 5 go through, the rest 429 insufficient_quota', async () => {
    const { key } = await createKey({ monthlyLimit: 5 });
    const { ok, codes } = await concurrentSuccesses([urlA, urlB], key, 20);
    expect(ok).toBe(5);
    expect(new Set(codes)).toEqual(new Set(['insufficient_quota']));
  });

  it('attack: the counter store loses the key\'s counter (its prefixed key deleted) after the limit was used up: still refused on both nodes, also when rebuilt by both at once', async () => {
    const { key, id } = await createKey({ monthlyLimit: 3 });
    for (const url of [urlA, urlB, urlA]) await client(url, key).chat.completions.create({ model: 'mock-model', messages });
    expect((await refusal(client(urlB, key).chat.completions.create({ model: 'mock-model', messages }))).code).toBe('insufficient_quota');
    // Both nodes' usage written, as their flush timers do within gateway.usageFlushMs.
    await a.gateway.meter.flush();
    await b.gateway.meter.flush();
    await a.kv.del(`gw:calls:${id}:${monthOf(Date.now())}`);
    expect(await a.kv.get(`gw:calls:${id}:${monthOf(Date.now())}`)).toBeNull();
    const { ok, codes } = await concurrentSuccesses([urlA, urlB], key, 10);
    expect(ok).toBe(0);
    expect(new Set(codes)).toEqual(new Set(['insufficient_quota']));
  });

  it('a key with calls left keeps exactly the rest when its counter is lost, under concurrent calls on both nodes', async () => {
    const { key, id } = await createKey({ monthlyLimit: 5 });
    await client(urlA, key).chat.completions.create({ model: 'mock-model', messages });
    await client(urlB, key).chat.completions.create({ model: 'mock-model', messages });
    await a.gateway.meter.flush();
    await b.gateway.meter.flush();
    await b.kv.del(`gw:calls:${id}:${monthOf(Date.now())}`);
    const { ok } = await concurrentSuccesses([urlA, urlB], key, 12);
    expect(ok).toBe(3);
  });
});

const privateSkip = skip ?? privateRedisSkipReason;

(privateSkip ? describe.skip : describe)(`the monthly limit on two nodes when their Redis restarts without persistence${privateSkip ? `: ${privateSkip}` : ''}`, () => {
  let redis: PrivateService | undefined;
  let nodes: TwoNodes | undefined;
  let vendor: MockVendor;
  let urlA: string;
  let urlB: string;
  let owner: SignedInUser;
  let org: string;
  let ws: string;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai, anthropicKey: VENDOR_KEYS.anthropic });
    nodes = await startTwoNodes({
      env: { ...providerKeys, REDIS_URL: redis.url },
      // Rate limits share the counter store; off here so that a refusal can only be the monthly limit's.
      overrides: { ...providerOverrides(vendor.url), 'rateLimit.enabled': false, 'rateLimit.onStoreError': 'closed' },
    });
    for (const node of [nodes.a, nodes.b]) await node.app.listen({ port: 0, host: '127.0.0.1' });
    urlA = `http://127.0.0.1:${(nodes.a.app.server.address() as AddressInfo).port}`;
    urlB = `http://127.0.0.1:${(nodes.b.app.server.address() as AddressInfo).port}`;
    owner = await signUpUser(nodes.a.app, nodes.mail, 'gateway-redis-restart@example.com');
    org = (await nodes.a.app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'Redis restart' }, headers: owner.auth })).json().id;
    ws = (await nodes.a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name: 'W' }, headers: owner.auth })).json().id;
  });

  afterAll(async () => {
    await nodes?.close();
    await redis?.close();
    await vendor?.close();
  });

  const client = (url: string, apiKey: string): OpenAI => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0, timeout: 10_000 });

  it('attack: use up the limit, Redis restarts empty: 503 + Retry-After while it is down, still 429 insufficient_quota on both nodes once it is back', async () => {
    const res = await nodes!.a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'k', monthlyLimit: 2 }, headers: owner.auth });
    const key = res.json().key as string;
    await client(urlA, key).chat.completions.create({ model: 'mock-model', messages });
    await client(urlB, key).chat.completions.create({ model: 'mock-model', messages });
    expect((await refusal(client(urlA, key).chat.completions.create({ model: 'mock-model', messages }))).code).toBe('insufficient_quota');
    await nodes!.a.gateway.meter.flush();
    await nodes!.b.gateway.meter.flush();

    await redis!.stop();
    const down = await refusal(client(urlB, key).chat.completions.create({ model: 'mock-model', messages }));
    expect(down).toMatchObject({ status: 503, code: 'service_unavailable' });
    expect(Number(down.retryAfter)).toBeGreaterThan(0);

    await redis!.start();
    // Both nodes reconnect on their own (bounded: 200 polls).
    for (let i = 0; i < 200; i++) {
      const ready = await Promise.all([nodes!.a.kv.ping(), nodes!.b.kv.ping()]).then(
        () => true,
        () => false,
      );
      if (ready) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const { ok, codes } = await concurrentSuccesses([urlA, urlB], key, 8);
    expect(ok).toBe(0);
    expect(new Set(codes)).toEqual(new Set(['insufficient_quota']));
  });
});
