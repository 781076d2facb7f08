/**
 * Budgets through the API and the stock `openai` SDK on one embedded node (ABUSE-2): bad input gets
 * 400, members read and admins set, a chat call reserves its worst case and settles what it used,
 * the hard limit refuses with the category's code and Retry-After in the vendor's shape, a limit
 * set below the current use refuses from then on, the soft limit warns (header, audit, one mail per
 * period), and the consume API meters files and messages.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOCK_COMPLETION_TOKENS, MOCK_PROMPT_TOKENS } from '../support/mock-vendor.ts';
import { createApiKey, createOrgAndWorkspace, expectStatus, startGatewayApp, type GatewayTestApp } from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

// 68 characters: the local estimate is exactly the 17 prompt tokens the mock vendor reports.
const PROMPT = 'Count these words and then say hello to the mock vendor, thank you!!';
const messages = [{ role: 'user' as const, content: PROMPT }];
const PER_CALL = MOCK_PROMPT_TOKENS + MOCK_COMPLETION_TOKENS;

let t: GatewayTestApp;
let owner: SignedInUser;
let viewer: SignedInUser;
let org: string;
let ws: string;

async function putBudget(user: SignedInUser, body: Record<string, unknown>) {
  return t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/budgets`, payload: body, headers: user.auth });
}

beforeAll(async () => {
  t = await startGatewayApp({ overrides: { 'budgets.sweepSeconds': 3600, 'metrics.open': true } });
  owner = await signUpUser(t.app, t.mail, 'budget-owner@example.com');
  viewer = await signUpUser(t.app, t.mail, 'budget-viewer@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Budgets'));
  // The viewer joins through an invitation.
  const inv = expectStatus(await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/invitations`, payload: { email: 'budget-viewer@example.com', role: 'viewer' }, headers: owner.auth }), 201);
  const token = /"token": "([^"]+)"/.exec(t.mail.at(-1)?.text ?? '')?.[1];
  expect(inv.statusCode).toBe(201);
  expectStatus(await t.app.inject({ method: 'POST', url: '/v1/invitations/accept', payload: { token }, headers: viewer.auth }), 200);
});

afterAll(async () => {
  await t?.close();
});

describe('budget definitions; bad input: a negative, absurd or fractional limit, an unknown category or period, a soft limit above the hard one', () => {
  it.each([
    ['a negative limit', { category: 'ai_tokens', period: 'day', hardLimit: -1 }],
    ['an absurd limit', { category: 'ai_tokens', period: 'day', hardLimit: 1e18 }],
    ['a fractional limit', { category: 'ai_tokens', period: 'day', hardLimit: 1.5 }],
    ['an unknown category', { category: 'gpu_hours', period: 'day', hardLimit: 10 }],
    ['an unknown period', { category: 'ai_tokens', period: 'week', hardLimit: 10 }],
    ['a soft limit above the hard one', { category: 'ai_tokens', period: 'day', hardLimit: 10, softLimit: 11 }],
    ['a key budget without its workspace', { category: 'ai_tokens', period: 'day', hardLimit: 10, apiKeyId: 'AAAAAAAAAAAAAAAA' }],
    ['an unknown field', { category: 'ai_tokens', period: 'day', hardLimit: 10, bypass: true }],
  ])('refuses %s with 400 and stores nothing', async (_name, body) => {
    const res = await putBudget(owner, body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION_FAILED');
    const list = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: owner.auth }), 200).json();
    expect(list.budgets).toEqual([]);
  });

  it('refuses a workspace of another org with 400', async () => {
    const res = await putBudget(owner, { category: 'ai_tokens', period: 'day', hardLimit: 10, workspaceId: '00000000-0000-4000-8000-000000000000' });
    expect(res.statusCode).toBe(400);
  });

  it('members read budgets; only admins set them', async () => {
    expect((await putBudget(viewer, { category: 'messages', period: 'day', hardLimit: 10 })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: viewer.auth })).statusCode).toBe(200);
  });

  it('ifVersion refuses a change made on top of another admin\'s with 409', async () => {
    const first = expectStatus(await putBudget(owner, { category: 'file_bytes', period: 'month', hardLimit: 100, ifVersion: 0 }), 200).json();
    expect(first.version).toBe(1);
    expect((await putBudget(owner, { category: 'file_bytes', period: 'month', hardLimit: 200, ifVersion: 0 })).json().error.code).toBe('BUDGET_VERSION_CONFLICT');
    expectStatus(await putBudget(owner, { category: 'file_bytes', period: 'month', hardLimit: 300, ifVersion: 1 }), 200);
    const stale = await putBudget(owner, { category: 'file_bytes', period: 'month', hardLimit: 400, ifVersion: 1 });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().error.code).toBe('BUDGET_VERSION_CONFLICT');
    const list = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: owner.auth }), 200).json();
    expect(list.budgets.find((b: { category: string }) => b.category === 'file_bytes')).toMatchObject({ hardLimit: 300, version: 2 });
    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/budgets/${first.id}`, headers: owner.auth }), 204);
  });

  it('concurrent admin changes: every change lands whole, versions count each, the last one is what calls meet', async () => {
    const limits = Array.from({ length: 12 }, (_, i) => 1000 + i);
    const results = await Promise.all(limits.map((hardLimit) => putBudget(owner, { category: 'messages', period: 'month', hardLimit, softLimit: hardLimit - 1 })));
    expect(results.every((r) => r.statusCode === 200)).toBe(true);
    const versions = results.map((r) => r.json().version as number).sort((a, b) => a - b);
    expect(versions).toEqual(limits.map((_, i) => i + 1));
    const last = results.find((r) => r.json().version === limits.length)?.json();
    const list = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: owner.auth }), 200).json();
    const stored = list.budgets.find((b: { category: string }) => b.category === 'messages');
    expect(stored).toMatchObject({ hardLimit: last.hardLimit, softLimit: last.hardLimit - 1, version: limits.length });
    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/budgets/${stored.id}`, headers: owner.auth }), 204);
  });
});

describe('AI calls against a budget', () => {
  it('a chat budget of 3 calls lets exactly 3 through, then 429 BUDGET_EXCEEDED_AI_TOKENS with Retry-After in OpenAI\'s shape', async () => {
    const { key, id } = await createApiKey(t, owner, org, ws);
    const budget = expectStatus(await putBudget(owner, { category: 'ai_tokens', period: 'day', workspaceId: ws, apiKeyId: id, hardLimit: 3 * PER_CALL }), 200).json();
    const client = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS });
    const err = (await client.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS }).catch((e: unknown) => e)) as { status: number; code: string; headers: Headers };
    expect(err.status).toBe(429);
    expect(err.code).toBe('budget_exceeded_ai_tokens');
    expect(Number(err.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(err.headers.get('retry-after'))).toBeLessThanOrEqual(86_400);
    const list = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: viewer.auth }), 200).json();
    expect(list.budgets.find((b: { id: string }) => b.id === budget.id)).toMatchObject({ used: 3 * PER_CALL, remaining: 0 });
  });

  it('a limit set below the current use is accepted and refuses from then on', async () => {
    const { key, id } = await createApiKey(t, owner, org, ws);
    expectStatus(await putBudget(owner, { category: 'ai_tokens', period: 'month', workspaceId: ws, apiKeyId: id, hardLimit: 10 * PER_CALL }), 200);
    const client = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    await client.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS });
    await client.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS });
    const lowered = expectStatus(await putBudget(owner, { category: 'ai_tokens', period: 'month', workspaceId: ws, apiKeyId: id, hardLimit: PER_CALL }), 200).json();
    expect(lowered).toMatchObject({ used: 2 * PER_CALL, remaining: 0 });
    const err = (await client.chat.completions.create({ model: 'mock-model', messages, max_tokens: 1 }).catch((e: unknown) => e)) as { status: number; code: string };
    expect(err.status).toBe(429);
    expect(err.code).toBe('budget_exceeded_ai_tokens');
  });

  it('a call without max_tokens reserves the configured default and settles what it used', async () => {
    const { key, id } = await createApiKey(t, owner, org, ws);
    // Fits the actual use but not the default worst case (4096 output tokens): refused up front.
    expectStatus(await putBudget(owner, { category: 'ai_tokens', period: 'day', workspaceId: ws, apiKeyId: id, hardLimit: 1000 }), 200);
    const client = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const err = (await client.chat.completions.create({ model: 'mock-model', messages }).catch((e: unknown) => e)) as { status: number };
    expect(err.status).toBe(429);
    expectStatus(await putBudget(owner, { category: 'ai_tokens', period: 'day', workspaceId: ws, apiKeyId: id, hardLimit: 5000 }), 200);
    await client.chat.completions.create({ model: 'mock-model', messages });
    // The settle runs once the answer is sent: the use drops from the worst case to what was used.
    await expect
      .poll(async () => expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: owner.auth }), 200).json().budgets.find((b: { apiKeyId: string | null }) => b.apiKeyId === id).used)
      .toBe(PER_CALL);
  });

  it('the soft limit warns with a header on each call past it, one audit event and one mail to the admins per period', async () => {
    const { key, id } = await createApiKey(t, owner, org, ws);
    const budgetId = expectStatus(await putBudget(owner, { category: 'ai_tokens', period: 'day', workspaceId: ws, apiKeyId: id, hardLimit: 100 * PER_CALL, softLimit: PER_CALL }), 200).json().id;
    const mailBefore = t.mail.filter((m) => m.subject.includes('soft limit')).length;
    const client = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const first = await client.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS }).withResponse();
    expect(first.response.headers.get('x-gatehouse-budget-warning')).toContain('ai_tokens');
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'mock-model', messages, max_tokens: MOCK_COMPLETION_TOKENS });
    await expect.poll(() => t.mail.filter((m) => m.subject.includes('soft limit')).length - mailBefore).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(t.mail.filter((m) => m.subject.includes('soft limit')).length - mailBefore).toBe(1);
    expect(t.mail.filter((m) => m.subject.includes('soft limit')).at(-1)?.to).toBe('budget-owner@example.com');
    const events = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/audit?action=budget.soft_limit`, headers: owner.auth }), 200).json();
    expect(events.events.filter((e: { target: { id: string } }) => e.target.id === budgetId)).toHaveLength(1);
  });
});

describe('streams and visibility', () => {
  it('a stream cut off mid-way settles what was delivered: the budget\'s use equals what metering recorded', async () => {
    const { key, id } = await createApiKey(t, owner, org, ws);
    const budgetId = expectStatus(await putBudget(owner, { category: 'ai_tokens', period: 'day', workspaceId: ws, apiKeyId: id, hardLimit: 1_000_000 }), 200).json().id;
    const client = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const full = await client.chat.completions.create({ model: 'mock-model', messages, max_tokens: 500, stream: true, stream_options: { include_usage: true } });
    for await (const _chunk of full) void _chunk;
    const broken = await client.chat.completions.create({ model: 'mock-break-midstream', messages, max_tokens: 500, stream: true });
    await (async () => {
      for await (const _chunk of broken) void _chunk;
    })().catch(() => undefined);
    // The usage report flushes this node's meter; the budget settled from the same outcomes.
    await expect
      .poll(async () => {
        const usage = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/usage`, headers: owner.auth }), 200).json();
        const row = usage.keys.find((k: { keyId: string }) => k.keyId === id);
        const list = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: owner.auth }), 200).json();
        const used = list.budgets.find((b: { id: string }) => b.id === budgetId).used as number;
        return row && row.requests === 2 ? used === row.inputTokens + row.outputTokens && used < 2 * (17 + 500) : false;
      })
      .toBe(true);
  });

  it('reservations, settled use and refusals are on /metrics by category', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/gatehouse_budget_reservations_total\{category="ai_tokens"\} [1-9]/);
    expect(res.body).toMatch(/gatehouse_budget_refusals_total\{category="ai_tokens"\} [1-9]/);
    expect(res.body).toMatch(/gatehouse_budget_settled_total\{category="ai_tokens"\} [1-9]/);
    expect(res.body).toContain('gatehouse_budget_open_reservations');
  });
});

describe('the consume API', () => {
  it('meters files and messages all or nothing, and refuses with BUDGET_EXCEEDED_MESSAGES past the hard limit', async () => {
    const { key, id } = await createApiKey(t, owner, org, ws, { scopes: ['budgets:consume'] });
    expectStatus(await putBudget(owner, { category: 'messages', period: 'day', workspaceId: ws, apiKeyId: id, hardLimit: 5 }), 200);
    expectStatus(await putBudget(owner, { category: 'files', period: 'day', workspaceId: ws, apiKeyId: id, hardLimit: 100 }), 200);
    const consume = (payload: object) => t.app.inject({ method: 'POST', url: '/v1/budgets/consume', payload, headers: { authorization: `Bearer ${key}` } });
    expect((await consume({ messages: 0 })).statusCode).toBe(400);
    expect((await consume({ messages: -1 })).statusCode).toBe(400);
    expect((await consume({ messages: 4, files: 1 })).statusCode).toBe(200);
    const refused = await consume({ messages: 2, files: 1 });
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe('BUDGET_EXCEEDED_MESSAGES');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    const list = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: owner.auth }), 200).json();
    // All or nothing: the refused call counted no file either.
    expect(list.budgets.find((b: { apiKeyId: string | null; category: string }) => b.apiKeyId === id && b.category === 'files')).toMatchObject({ used: 1 });
    expect(list.budgets.find((b: { apiKeyId: string | null; category: string }) => b.apiKeyId === id && b.category === 'messages')).toMatchObject({ used: 4 });
  });

  it('a key without the budgets:consume scope cannot call it', async () => {
    const { key } = await createApiKey(t, owner, org, ws);
    const res = await t.app.inject({ method: 'POST', url: '/v1/budgets/consume', payload: { messages: 1 }, headers: { authorization: `Bearer ${key}` } });
    expect(res.statusCode).toBe(403);
  });
});
