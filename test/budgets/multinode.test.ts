/**
 * Budgets on two nodes sharing PostgreSQL and a private Redis (ABUSE-2), through the stock `openai`
 * SDK against the mock vendor: 64 concurrent clients against a budget of N calls get exactly N
 * through (overshoot 0) and the budget's use equals what metering recorded; Redis flushed mid-run
 * rebuilds the counters from the ledger with no overshoot; reservations of a node that died before
 * settling expire and give their room back; an admin's change applies on the other node at once.
 * Runs in CI (DATABASE_URL and REDIS_URL, redis-server installed); skipped locally without them.
 */
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUDGETS } from '../../src/budgets/index.ts';
import type { Node } from '../../src/cli/runtime.ts';
import { mockProviders, VENDOR_KEYS } from '../support/gateway.ts';
import { MOCK_COMPLETION_TOKENS, MOCK_PROMPT_TOKENS, startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { privateRedisSkipReason, startPrivateRedis, type PrivateService } from '../support/private-services.ts';
import { startTwoNodes, twoNodeSkipReason, type TwoNodes } from '../support/two-nodes.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

// 68 characters: the local estimate is exactly the 17 prompt tokens the mock vendor reports, so a
// call reserves exactly what it uses and "the calls that fit" is a number.
const PROMPT = 'Count these words and then say hello to the mock vendor, thank you!!';
const messages = [{ role: 'user' as const, content: PROMPT }];
const PER_CALL = MOCK_PROMPT_TOKENS + MOCK_COMPLETION_TOKENS;
const CLIENTS = 64;
const skip = twoNodeSkipReason ?? privateRedisSkipReason;

(skip ? describe.skip : describe)(`budgets on two nodes, PostgreSQL + Redis${skip ? `: ${skip}` : ''}`, () => {
  let redis: PrivateService;
  let nodes: TwoNodes | undefined;
  let a: Node;
  let b: Node;
  let urls: string[];
  let vendor: MockVendor;
  let owner: SignedInUser;
  let org: string;
  let ws: string;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai, anthropicKey: VENDOR_KEYS.anthropic, slowMs: 200 });
    nodes = await startTwoNodes({
      env: { REDIS_URL: redis.url, GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ openai: VENDOR_KEYS.openai, faulty: VENDOR_KEYS.openai, anthropic: VENDOR_KEYS.anthropic }) },
      overrides: {
        'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
        'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
        'gateway.upstream.allowInsecureHttp': true,
        'gateway.providers': mockProviders(vendor.url),
        'rateLimit.enabled': false,
        // Long enough for any call of this suite; the sweep looks every second.
        'budgets.reservationTtlSeconds': 15,
        'budgets.sweepSeconds': 1,
        'budgets.definitionCacheSeconds': 3600,
      },
    });
    ({ a, b } = nodes);
    for (const node of [a, b]) await node.app.listen({ port: 0, host: '127.0.0.1' });
    urls = [a, b].map((n) => `http://127.0.0.1:${(n.app.server.address() as AddressInfo).port}/v1`);
    owner = await signUpUser(a.app, nodes.mail, 'budgets-two-nodes@example.com');
    org = (await a.app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'Budgets two nodes' }, headers: owner.auth })).json().id;
    ws = (await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name: 'W' }, headers: owner.auth })).json().id;
  }, 60_000);

  afterAll(async () => {
    await nodes?.close();
    await vendor?.close();
    await redis?.close();
  });

  async function createKey(): Promise<{ key: string; id: string }> {
    const res = await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'k' }, headers: owner.auth });
    expect(res.statusCode).toBe(201);
    return { key: res.json().key, id: res.json().apiKey.id };
  }

  async function setKeyBudget(node: Node, id: string, hardLimit: number): Promise<string> {
    const res = await node.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/budgets`, payload: { category: 'ai_tokens', period: 'day', workspaceId: ws, apiKeyId: id, hardLimit }, headers: owner.auth });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().id;
  }

  async function usedOf(budgetId: string): Promise<number> {
    const res = await b.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: owner.auth });
    return res.json().budgets.find((x: { id: string }) => x.id === budgetId).used;
  }

  /** `total` calls from 64 concurrent clients spread over both nodes; `during` runs once `after` calls answered. */
  async function load(key: string, total: number, model = 'mock-model', during?: { after: number; run: () => Promise<void> }) {
    let next = 0;
    let answered = 0;
    let ok = 0;
    const codes = new Map<string, number>();
    let hook: Promise<void> | undefined;
    const clients = Array.from({ length: CLIENTS }, (_, i) => new OpenAI({ apiKey: key, baseURL: urls[i % 2], maxRetries: 0, timeout: 30_000 }));
    await Promise.all(
      clients.map(async (client) => {
        while (next < total) {
          next += 1;
          try {
            await client.chat.completions.create({ model, messages, max_tokens: MOCK_COMPLETION_TOKENS });
            ok += 1;
          } catch (err) {
            const code = String((err as { code?: string }).code ?? (err as Error).message);
            codes.set(code, (codes.get(code) ?? 0) + 1);
          }
          answered += 1;
          if (during && answered === during.after) hook = during.run();
        }
      }),
    );
    await hook;
    return { ok, codes: Object.fromEntries(codes) };
  }

  async function meteredTokens(keyId: string): Promise<number> {
    await a.gateway.meter.flush();
    await b.gateway.meter.flush();
    const report = (await a.app.inject({ method: 'GET', url: `/v1/orgs/${org}/usage`, headers: owner.auth })).json();
    const row = report.keys.find((k: { keyId: string }) => k.keyId === keyId);
    return row ? row.inputTokens + row.outputTokens : 0;
  }

  it('64 concurrent clients on two nodes against a budget of N calls: exactly N succeed, overshoot 0, use equals metering', async () => {
    const N = 40;
    const { key, id } = await createKey();
    const budget = await setKeyBudget(a, id, N * PER_CALL);
    const result = await load(key, 3 * CLIENTS);
    expect(result.ok).toBe(N);
    expect(result.codes).toEqual({ budget_exceeded_ai_tokens: 3 * CLIENTS - N });
    const used = await usedOf(budget);
    expect(used - N * PER_CALL).toBe(0);
    expect(await meteredTokens(id)).toBe(used);
    console.info(`[budgets] two nodes, ${CLIENTS} clients, budget of ${N} calls: ${result.ok} succeeded, overshoot ${used - N * PER_CALL} tokens`);
  }, 120_000);

  it('Redis flushed mid-run: counters are rebuilt from the ledger and the budget is never overshot', async () => {
    const N = 60;
    const { key, id } = await createKey();
    const budget = await setKeyBudget(b, id, N * PER_CALL);
    const flusher = new Redis(redis.url);
    try {
      const result = await load(key, 3 * CLIENTS, 'mock-model', { after: 30, run: async () => void (await flusher.flushall()) });
      const used = await usedOf(budget);
      expect(used).toBeLessThanOrEqual(N * PER_CALL);
      expect(used).toBe(result.ok * PER_CALL);
      expect(result.ok).toBe(N);
      expect(await meteredTokens(id)).toBe(used);
      console.info(`[budgets] Redis flushed after 30 answers: ${result.ok} of ${N} succeeded, overshoot ${used - N * PER_CALL} tokens`);
    } finally {
      flusher.disconnect();
    }
  }, 120_000);

  it('a node that dies between reserve and settle: its reservations expire and give their room back', async () => {
    const { key, id } = await createKey();
    const budget = await setKeyBudget(a, id, 4 * PER_CALL);
    // Node B reserves three calls' worth and never settles them (as if killed mid-call).
    const engineB = b.use(BUDGETS).engine;
    for (let i = 0; i < 3; i++) await engineB.reserve({ orgId: org, workspaceId: ws, apiKeyId: id, amounts: { ai_tokens: PER_CALL, ai_cost: 0 }, requestId: null });
    expect(await usedOf(budget)).toBe(3 * PER_CALL);
    const client = new OpenAI({ apiKey: key, baseURL: urls[0], maxRetries: 0 });
    await client.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS });
    await expect(client.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS })).rejects.toMatchObject({ status: 429 });
    // After reservationTtlSeconds the sweep (either node) settles them from metering: nothing was used.
    await expect.poll(() => usedOf(budget), { timeout: 30_000, interval: 500 }).toBe(PER_CALL);
    await client.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS });
    expect(await usedOf(budget)).toBe(2 * PER_CALL);
  }, 60_000);

  it('a budget lowered on node A refuses on node B at once, though B had the budgets cached', async () => {
    const { key, id } = await createKey();
    await setKeyBudget(a, id, 100 * PER_CALL);
    const clientB = new OpenAI({ apiKey: key, baseURL: urls[1], maxRetries: 0 });
    await clientB.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS });
    await setKeyBudget(a, id, PER_CALL);
    let refusedAfter = Infinity;
    const t0 = Date.now();
    while (Date.now() - t0 < 1000) {
      const refused = await clientB.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS }).then(
        () => false,
        (err: unknown) => (err as { status?: number }).status === 429,
      );
      if (refused) {
        refusedAfter = Date.now() - t0;
        break;
      }
    }
    expect(refusedAfter).toBeLessThan(1000);
  }, 30_000);
});
