/**
 * API keys, a workspace's own providers, model routing and metering through the management API
 * (GW-1..4): the plaintext key once and a hash stored, the presented-key lookup path and nothing
 * else across tenants, last-used and usage written in batches (never on the request path),
 * bring-your-own keys sealed and write-only, aliases with a fallback chain, and the usage report.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseApiKey } from '../../src/gateway/api-key-format.ts';
import { rotateDeks, scanSealedColumns } from '../../src/keyring/reencrypt.ts';
import { MOCK_COMPLETION_TOKENS, MOCK_PROMPT_TOKENS, startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { createApiKey, createOrgAndWorkspace, createWorkspace, expectStatus, startGatewayApp, type GatewayTestApp } from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

// Built at run time so the secret scan does not flag it.
const BYOK_KEY = ['sk', 'byok', 'Z1x2C3v4B5n6M7a8S9d0F1g2H3j4K5l6'].join('-');
const messages = [{ role: 'user' as const, content: 'Say hello.' }];

let t: GatewayTestApp;
let own: MockVendor;
let owner: SignedInUser;
let editor: SignedInUser;
let org: string;
let ws: string;

beforeAll(async () => {
  // A second vendor that only the workspace's own key opens.
  own = await startMockVendor({ openaiKey: BYOK_KEY });
  t = await startGatewayApp({
    overrides: {
      // Long enough that nothing is written unless the test flushes.
      'gateway.usageFlushMs': 60_000,
      'gateway.maxKeysPerWorkspace': 6,
      'gateway.prices': [{ model: 'mock-model', inputPerMillion: '1000', outputPerMillion: '2000' }],
    },
  });
  owner = await signUpUser(t.app, t.mail, 'keys-owner@example.com');
  editor = await signUpUser(t.app, t.mail, 'keys-editor@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Keys'));
  await t.node.db.withTenant(org, (tx) => tx.query("insert into memberships (tenant_id, user_id, role) values ($1, $2, 'editor')", [org, editor.userId]));
  await t.node.tenancy.authority.evictOrg(org);
});

afterAll(async () => {
  await t?.close();
  await own?.close();
});

function client(apiKey: string): OpenAI {
  return new OpenAI({ apiKey, baseURL: `${t.url}/v1`, maxRetries: 0, timeout: 10_000 });
}

describe('API keys', () => {
  it('an editor creates a key: the plaintext once, in the gatehouse_ format; only its SHA-256 is stored', async () => {
    const res = expectStatus(
      await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'ci', scopes: ['ai:chat'], monthlyLimit: 1000 }, headers: editor.auth }),
      201,
    );
    const { key, apiKey } = res.json<{ key: string; apiKey: { id: string; scopes: string[]; monthlyLimit: number; createdBy: string } }>();
    const parsed = parseApiKey(key);
    expect(parsed?.id).toBe(apiKey.id);
    expect(apiKey).toMatchObject({ scopes: ['ai:chat'], monthlyLimit: 1000, createdBy: editor.userId });
    const stored = await t.node.db.asOwner((tx) => tx.query<Record<string, unknown>>('select * from api_keys where id = $1', [apiKey.id]));
    const row = JSON.stringify(stored.rows[0]);
    expect(row).not.toContain(parsed?.secret);
    expect(stored.rows[0]?.secret_hash).toMatch(/^[0-9a-f]{64}$/);
    const list = expectStatus(await t.app.inject({ url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, headers: editor.auth }), 200);
    expect(list.body).not.toContain(parsed?.secret);
    expect(list.body).not.toContain('secret');
    expect(list.json<{ apiKeys: { id: string }[] }>().apiKeys.map((k) => k.id)).toContain(apiKey.id);
    const events = await t.node.db.asOwner((tx) => tx.query<{ action: string }>("select action from audit_events where tenant_id = $1 and action like 'apikey.%'", [org]));
    expect(events.rows.map((e) => e.action)).toContain('apikey.created');
  });

  it('refuses an expiry in the past, repeated scopes, unknown scopes and unknown fields', async () => {
    const post = (payload: object) => t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload, headers: owner.auth });
    expect((await post({ name: 'x', expiresAt: new Date(Date.now() - 1000).toISOString() })).json().error.message).toContain('body.expiresAt');
    expect((await post({ name: 'x', scopes: ['ai:chat', 'ai:chat'] })).statusCode).toBe(400);
    expect((await post({ name: 'x', scopes: ['admin'] })).statusCode).toBe(400);
    expect((await post({ name: 'x', tenantId: org })).statusCode).toBe(400);
  });

  it('caps unrevoked keys per workspace (GATEWAY_LIMIT_REACHED); a revoked key frees its place', async () => {
    const other = await createWorkspace(t, owner, org, 'capped');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await createApiKey(t, owner, org, other)).id);
    const refused = await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${other}/api-keys`, payload: { name: 'one too many' }, headers: owner.auth });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('GATEWAY_LIMIT_REACHED');
    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${other}/api-keys/${ids[0]}`, headers: owner.auth }), 204);
    await createApiKey(t, owner, org, other);
  });

  it('revocation is scoped: another workspace\'s or another org\'s key id is 404 and stays valid', async () => {
    const mine = await createApiKey(t, owner, org, ws);
    const other = await createWorkspace(t, owner, org, 'other');
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${other}/api-keys/${mine.id}`, headers: owner.auth })).statusCode).toBe(404);
    const stranger = await signUpUser(t.app, t.mail, 'keys-stranger@example.com');
    const theirs = await createOrgAndWorkspace(t, stranger, 'Stranger');
    const theirKey = await createApiKey(t, stranger, theirs.org, theirs.ws);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys/${theirKey.id}`, headers: owner.auth })).statusCode).toBe(404);
    expect((await client(mine.key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expect((await client(theirKey.key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
  });

  it('the presented-key policy shows one row, and only to a transaction that names its id', async () => {
    const a = await createApiKey(t, owner, org, ws);
    const { db } = t.node;
    // No setting: the application role sees no key outside a tenant context.
    expect((await db.query('select id from api_keys')).rowCount).toBe(0);
    const named = await db.transaction(async (tx) => {
      await tx.query("select set_config('gatehouse.api_key_id', $1, true)", [a.id]);
      return tx.query<{ id: string }>('select id from api_keys');
    });
    expect(named.rows).toEqual([{ id: a.id }]);
    // Naming a key does not open writes.
    const write = await db.transaction(async (tx) => {
      await tx.query("select set_config('gatehouse.api_key_id', $1, true)", [a.id]);
      return tx.query('update api_keys set name = $2 where id = $1', [a.id, 'renamed']);
    });
    expect(write.rowCount).toBe(0);
  });

  it('a deleted workspace takes its keys with it, refused at once', async () => {
    const doomed = await createWorkspace(t, owner, org, 'doomed');
    const k = await createApiKey(t, owner, org, doomed);
    expect((await client(k.key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${doomed}`, headers: owner.auth }), 204);
    await expect(client(k.key).chat.completions.create({ model: 'mock-model', messages })).rejects.toThrow(/401/);
  });

  it('last-used time: noted in memory on use, shown at once, written with the next batch (no write per request)', async () => {
    const k = await createApiKey(t, owner, org, ws);
    await t.node.gateway.meter.flush();
    await client(k.key).chat.completions.create({ model: 'mock-model', messages });
    const stored = async () => (await t.node.db.asOwner((tx) => tx.query<{ last_used_at: Date | null }>('select last_used_at from api_keys where id = $1', [k.id]))).rows[0]?.last_used_at;
    expect(await stored()).toBeNull();
    const list = expectStatus(await t.app.inject({ url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, headers: owner.auth }), 200);
    expect(list.json<{ apiKeys: { id: string; lastUsedAt: string | null }[] }>().apiKeys.find((x) => x.id === k.id)?.lastUsedAt).not.toBeNull();
    await t.node.gateway.meter.flush();
    expect(await stored()).toBeInstanceOf(Date);
  });
});

describe('a workspace\'s own providers (bring your own key)', () => {
  it('PUT stores the key sealed and never shows it; calls go to the workspace\'s provider with its key; DELETE goes back to the platform\'s', async () => {
    const byok = await createWorkspace(t, owner, org, 'byok');
    const key = (await createApiKey(t, owner, org, byok)).key;
    const put = expectStatus(
      await t.app.inject({
        method: 'PUT',
        url: `/v1/orgs/${org}/workspaces/${byok}/providers/own-openai`,
        payload: { kind: 'openai', baseUrl: own.url, apiKey: BYOK_KEY, models: ['mock-model'] },
        headers: owner.auth,
      }),
      200,
    );
    expect(put.json()).toMatchObject({ name: 'own-openai', kind: 'openai', keySet: true, models: ['mock-model'] });
    expect(put.body).not.toContain(BYOK_KEY);
    const list = expectStatus(await t.app.inject({ url: `/v1/orgs/${org}/workspaces/${byok}/providers`, headers: owner.auth }), 200);
    expect(list.json().providers).toHaveLength(1);
    expect(list.body).not.toContain(BYOK_KEY);
    const row = await t.node.db.asOwner((tx) => tx.query<{ api_key_sealed: string }>('select api_key_sealed from provider_credentials where tenant_id = $1', [org]));
    expect(row.rows[0]?.api_key_sealed).not.toContain(BYOK_KEY.slice(8));

    own.reset();
    t.vendor.reset();
    expect((await client(key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expect(own.requests[0]?.headers.authorization).toBe(`Bearer ${BYOK_KEY}`);
    expect(t.vendor.requests).toHaveLength(0);

    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${byok}/providers/own-openai`, headers: owner.auth }), 204);
    await client(key).chat.completions.create({ model: 'mock-model', messages });
    expect(t.vendor.requests).toHaveLength(1);
    expect(own.requests).toHaveLength(1);
    const events = await t.node.db.asOwner((tx) => tx.query<{ body: string }>("select body from audit_events where tenant_id = $1 and action like 'provider.credential.%'", [org]));
    expect(events.rows).toHaveLength(2);
    expect(JSON.stringify(events.rows)).not.toContain(BYOK_KEY);
  });

  it('the gateway declares the sealed column: the registry scan opens every key, and a data-key rotation re-seals them so calls still work', async () => {
    const rotated = await createWorkspace(t, owner, org, 'rotated');
    const key = (await createApiKey(t, owner, org, rotated)).key;
    const put = { kind: 'openai', baseUrl: own.url, apiKey: BYOK_KEY, models: ['mock-model'] };
    expectStatus(await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${rotated}/providers/own`, payload: put, headers: owner.auth }), 200);
    const columns = t.node.gateway.feature.sealedColumns ?? [];
    expect(columns.map((c) => `${c.table}.${c.column}`)).toEqual(['provider_credentials.api_key_sealed']);
    expect(await scanSealedColumns(t.node.db, t.node.keyring, columns)).toEqual([]);
    const result = await rotateDeks({ db: t.node.db, keyring: t.node.keyring, columns, tenantId: org });
    expect(result.resealed).toBeGreaterThan(0);
    expect(await scanSealedColumns(t.node.db, t.node.keyring, columns)).toEqual([]);
    // Read the re-sealed key afresh rather than from the routing cache.
    t.node.gateway.routing.dropOrg(org);
    own.reset();
    expect((await client(key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expect(own.requests[0]?.headers.authorization).toBe(`Bearer ${BYOK_KEY}`);
  });

  it('refuses base URLs off the upstream allowlist, and keyless providers of kinds that need a key', async () => {
    const put = (payload: object) => t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/providers/p1`, payload, headers: owner.auth });
    const offList = await put({ kind: 'openai', baseUrl: 'https://api.example.com', apiKey: BYOK_KEY, models: ['m'] });
    expect(offList.statusCode).toBe(400);
    expect(offList.json().error.message).toContain('allowlist');
    expect(offList.body).not.toContain(BYOK_KEY);
    const metadata = await put({ kind: 'openai', baseUrl: 'http://169.254.169.254', apiKey: BYOK_KEY, models: ['m'] });
    expect(metadata.statusCode).toBe(400);
    expect((await put({ kind: 'anthropic', baseUrl: own.url, apiKey: '', models: ['m'] })).json().error.message).toContain('body.apiKey');
    // Nothing secret may hide in a base URL, which the API shows back.
    for (const baseUrl of [`http://user:${BYOK_KEY}@127.0.0.1:1`, `${own.url}/?key=${BYOK_KEY}`, `${own.url}/#${BYOK_KEY}`]) {
      const res = await put({ kind: 'openai', baseUrl, apiKey: BYOK_KEY, models: ['m'] });
      expect(res.statusCode).toBe(400);
      expect(res.body).not.toContain(BYOK_KEY);
    }
  });

  it('editors cannot manage providers; the providers list is for admins too', async () => {
    expect((await t.app.inject({ url: `/v1/orgs/${org}/workspaces/${ws}/providers`, headers: editor.auth })).statusCode).toBe(403);
  });
});

describe('model routing', () => {
  it('an alias falls back along its chain when the first target fails', async () => {
    const routed = await createWorkspace(t, owner, org, 'routed');
    const key = (await createApiKey(t, owner, org, routed)).key;
    expectStatus(
      await t.app.inject({
        method: 'PUT',
        url: `/v1/orgs/${org}/workspaces/${routed}/models`,
        payload: { allowedModels: [], aliases: [{ name: 'resilient', targets: [{ model: 'mock-500', provider: 'faulty' }, { model: 'mock-model' }] }] },
        headers: owner.auth,
      }),
      200,
    );
    t.vendor.reset();
    const completion = await client(key).chat.completions.create({ model: 'resilient', messages });
    expect(completion.model).toBe('mock-model');
    expect(t.vendor.requests.map((r) => (r.body as { model: string }).model)).toEqual(['mock-500', 'mock-500', 'mock-500', 'mock-model']);
    // No model outside the aliases: allowedModels is empty.
    await expect(client(key).chat.completions.create({ model: 'mock-model', messages })).rejects.toThrow(/404/);
    const settings = expectStatus(await t.app.inject({ url: `/v1/orgs/${org}/workspaces/${routed}/models`, headers: editor.auth }), 200);
    expect(settings.json()).toEqual({ allowedModels: [], aliases: [{ name: 'resilient', targets: [{ model: 'mock-500', provider: 'faulty' }, { model: 'mock-model', provider: null }] }] });
  });

  it('refuses pattern aliases and repeated alias names', async () => {
    const put = (payload: object) => t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/models`, payload, headers: owner.auth });
    expect((await put({ aliases: [{ name: 'a*', targets: [{ model: 'mock-model' }] }] })).statusCode).toBe(400);
    expect((await put({ aliases: [{ name: 'a', targets: [{ model: 'm' }] }, { name: 'a', targets: [{ model: 'm' }] }] })).statusCode).toBe(400);
  });
});

describe('metering', () => {
  it('buffers usage in memory (no write on the request path) and reports it per key, workspace and org with cost', async () => {
    const metered = await createWorkspace(t, owner, org, 'metered');
    const k = await createApiKey(t, owner, org, metered);
    await t.node.gateway.meter.flush();
    const c = client(k.key);
    await c.chat.completions.create({ model: 'mock-model', messages });
    const stream = await c.chat.completions.create({ model: 'mock-model', messages, stream: true });
    for await (const _chunk of stream) void _chunk;
    await c.chat.completions.create({ model: 'mock-no-usage', messages });
    // 502, or 503 once the alias test's failures opened this provider's breaker: a failed call either way.
    await expect(c.chat.completions.create({ model: 'mock-500', messages })).rejects.toThrow(/^50[23] /);
    const count = async () => (await t.node.db.asOwner((tx) => tx.query<{ n: number }>('select coalesce(sum(requests), 0)::int as n from usage_records where api_key_id = $1', [k.id]))).rows[0]?.n;
    expect(await count()).toBe(0);
    expect(t.node.gateway.meter.buffered).toBeGreaterThanOrEqual(4);

    const report = expectStatus(await t.app.inject({ url: `/v1/orgs/${org}/usage`, headers: editor.auth }), 200).json();
    expect(await count()).toBe(4);
    const mine = report.keys.find((x: { keyId: string }) => x.keyId === k.id);
    // Two priced calls of 17 in / 6 out at 1000 and 2000 USD per million tokens; the others unpriced.
    expect(mine).toMatchObject({ workspaceId: metered, requests: 4, estimatedRequests: 1, failedRequests: 1, costMicroUsd: 2 * (MOCK_PROMPT_TOKENS * 1000 + MOCK_COMPLETION_TOKENS * 2000) });
    expect(mine.inputTokens).toBeGreaterThanOrEqual(2 * MOCK_PROMPT_TOKENS);
    const wsTotals = report.workspaces.find((x: { workspaceId: string }) => x.workspaceId === metered);
    expect(wsTotals.requests).toBe(4);
    expect(report.org.requests).toBeGreaterThanOrEqual(4);
    expect(report.month).toBe(new Date().toISOString().slice(0, 7));

    const empty = expectStatus(await t.app.inject({ url: `/v1/orgs/${org}/usage?month=2020-01`, headers: owner.auth }), 200).json();
    expect(empty.org.requests).toBe(0);
    expect((await t.app.inject({ url: `/v1/orgs/${org}/usage?month=2020-13`, headers: owner.auth })).statusCode).toBe(400);
  });

  it('a usage write that fails is kept and written by the next flush', async () => {
    const { meter } = t.node.gateway;
    await meter.flush();
    const k = await createApiKey(t, owner, org, ws);
    await client(k.key).chat.completions.create({ model: 'mock-model', messages });
    // Break the next write: a record whose org does not exist fails the insert of its batch only.
    meter.record({
      tenantId: '00000000-0000-4000-8000-00000000dead',
      workspaceId: ws,
      apiKeyId: 'x',
      provider: 'p',
      model: 'm',
      inputTokens: 1,
      outputTokens: 1,
      estimated: false,
      costMicroUsd: null,
      status: 200,
      errorCode: null,
      durationMs: 1,
      at: new Date(),
    });
    await meter.flush();
    expect(meter.buffered).toBe(1);
    const n = await t.node.db.asOwner((tx) => tx.query<{ n: number }>('select coalesce(sum(requests), 0)::int as n from usage_records where api_key_id = $1', [k.id]));
    expect(n.rows[0]?.n).toBe(1);
  });

  it('rolls calls up per key, model, outcome and minute: one row holds their number and sums, and the report counts every call', async () => {
    const { meter } = t.node.gateway;
    await meter.flush();
    const rolled = await createWorkspace(t, owner, org, 'rolled');
    const k = await createApiKey(t, owner, org, rolled);
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    // The previous test's record of a missing org stays buffered (its writes keep failing).
    const before = meter.buffered;
    const call = (over: Partial<Parameters<typeof meter.record>[0]>) =>
      meter.record({
        tenantId: org,
        workspaceId: rolled,
        apiKeyId: k.id,
        provider: 'platform:mock',
        model: 'mock-model',
        inputTokens: 10,
        outputTokens: 4,
        estimated: false,
        costMicroUsd: 7,
        status: 200,
        errorCode: null,
        durationMs: 5,
        at: new Date(minute + 1_000),
        ...over,
      });
    for (let i = 0; i < 5; i++) call({ at: new Date(minute + i * 1_000) });
    call({ status: 502, errorCode: 'UPSTREAM_ERROR', inputTokens: 0, outputTokens: 0, costMicroUsd: null });
    call({ estimated: true });
    call({ at: new Date(minute - 1) }); // the minute before: a row of its own
    expect(meter.buffered).toBe(before + 8);
    await meter.flush();
    expect(meter.buffered).toBe(before);
    const { rows } = await t.node.db.asOwner((tx) =>
      tx.query<{ requests: number; input_tokens: string; output_tokens: string; cost_micro_usd: string | null; duration_ms: string; status: number; estimated: boolean; created_at: Date }>(
        'select requests, input_tokens, output_tokens, cost_micro_usd, duration_ms, status, estimated, created_at from usage_records where api_key_id = $1 order by created_at, status, estimated',
        [k.id],
      ),
    );
    expect(rows.map((r) => [r.requests, Number(r.input_tokens), Number(r.output_tokens), r.cost_micro_usd === null ? null : Number(r.cost_micro_usd), Number(r.duration_ms), r.status, r.estimated])).toEqual([
      [1, 10, 4, 7, 5, 200, false],
      [5, 50, 20, 35, 25, 200, false],
      [1, 10, 4, 7, 5, 200, true],
      [1, 0, 0, null, 5, 502, false],
    ]);
    expect(new Date(rows[1]?.created_at ?? 0).getTime()).toBe(minute);
    const report = expectStatus(await t.app.inject({ url: `/v1/orgs/${org}/usage`, headers: owner.auth }), 200).json();
    const mine = report.keys.find((x: { keyId: string }) => x.keyId === k.id);
    // A call at the very start of the month could put the row of the minute before in the previous month.
    const inMonth = new Date(minute - 1).getUTCMonth() === new Date(minute).getUTCMonth() ? 8 : 7;
    expect(mine).toMatchObject({ requests: inMonth, failedRequests: 1, estimatedRequests: 1 });
  });
});
