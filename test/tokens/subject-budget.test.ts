/**
 * Per-subject monthly call limits of client tokens (GW-6) on one embedded node: a token minted
 * with `monthlyCallLimit` (and a subject) carries it as the claim `gh_mcl`; the gateway counts the
 * subject's calls through the parent key per UTC month beside the key's own monthly limit, so one
 * end user or bot cannot spend the tenant's whole allowance. Concurrent calls past the budget are
 * refused 429 MONTHLY_LIMIT_REACHED (OpenAI `insufficient_quota`), calls refused so do not count
 * against the key, and other subjects of the same key are still served. Bad input is 400.
 * The two-node case (PostgreSQL + Redis, counter lost) is in test/tokens/multinode.test.ts.
 */
import OpenAI, { AuthenticationError, RateLimitError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicOriginOf } from '../../src/config/schema.ts';
import { signClientToken } from '../../src/tokens/jwt.ts';
import { createApiKey, createOrgAndWorkspace, expectStatus, startGatewayApp, type GatewayTestApp } from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const messages = [{ role: 'user' as const, content: 'Say hello.' }];
let t: GatewayTestApp;
let owner: SignedInUser;
let org: string;
let ws: string;

beforeAll(async () => {
  t = await startGatewayApp();
  owner = await signUpUser(t.app, t.mail, 'subject-budget@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Budgets'));
});

afterAll(async () => {
  await t?.close();
});

const chat = (token: string) => new OpenAI({ apiKey: token, baseURL: `${t.url}/v1`, maxRetries: 0, timeout: 10_000 }).chat.completions.create({ model: 'mock-model', messages });

async function mint(key: string, body: Record<string, unknown>): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: body, headers: { authorization: `Bearer ${key}` } });
  return expectStatus(res, 201).json().token;
}

/** Fulfilled count; every refusal must be 429 insufficient_quota (MONTHLY_LIMIT_REACHED). */
function passedAndRefusedAsOverBudget(results: PromiseSettledResult<unknown>[]): number {
  for (const r of results) {
    if (r.status === 'fulfilled') continue;
    expect(r.reason).toBeInstanceOf(RateLimitError);
    expect([(r.reason as RateLimitError).status, (r.reason as RateLimitError).code]).toEqual([429, 'insufficient_quota']);
  }
  return results.filter((r) => r.status === 'fulfilled').length;
}

describe('per-subject monthly call limits', () => {
  it('attack: 12 concurrent calls of subject S with a monthly limit of 3: exactly 3 pass, the rest 429 MONTHLY_LIMIT_REACHED; subject T of the same key is still served', async () => {
    const parent = await createApiKey(t, owner, org, ws, { scopes: ['ai:chat', 'tokens:mint'] });
    const [s1, s2] = [await mint(parent.key, { subject: 'bot-S', monthlyCallLimit: 3 }), await mint(parent.key, { subject: 'bot-S', monthlyCallLimit: 3 })];
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => chat(i % 2 ? s1 : s2)));
    expect(passedAndRefusedAsOverBudget(results)).toBe(3);
    // The raw answer: the exact status, code and a Retry-After until the next month.
    const raw = await t.app.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: 'mock-model', messages }, headers: { authorization: `Bearer ${s1}` } });
    expect(raw.statusCode).toBe(429);
    expect(raw.json().error.code).toBe('insufficient_quota');
    expect(Number(raw.headers['retry-after'])).toBeGreaterThan(0);
    const other = await mint(parent.key, { subject: 'bot-T', monthlyCallLimit: 3 });
    expect((await chat(other)).choices).toHaveLength(1);
  });

  it('attack: a subject hammering past its budget does not use up the key\'s monthly limit for the others', async () => {
    const parent = await createApiKey(t, owner, org, ws, { scopes: ['ai:chat', 'tokens:mint'], monthlyLimit: 8 });
    const greedy = await mint(parent.key, { subject: 'greedy', monthlyCallLimit: 3 });
    const calm = await mint(parent.key, { subject: 'calm', monthlyCallLimit: 3 });
    expect(passedAndRefusedAsOverBudget(await Promise.allSettled(Array.from({ length: 12 }, () => chat(greedy))))).toBe(3);
    expect(passedAndRefusedAsOverBudget(await Promise.allSettled(Array.from({ length: 12 }, () => chat(calm))))).toBe(3);
    // 6 of the key's 8 used: the key itself makes 2 more calls, then its own limit refuses.
    expect(passedAndRefusedAsOverBudget(await Promise.allSettled(Array.from({ length: 6 }, () => chat(parent.key))))).toBe(2);
  });

  it('attack: a validly signed token with a monthly limit but no subject is refused', async () => {
    const parent = await createApiKey(t, owner, org, ws, { scopes: ['ai:chat', 'tokens:mint'] });
    const signer = await t.node.signingKeys.current('client-token');
    const now = Math.floor(Date.now() / 1000);
    const { token } = signClientToken(signer, t.config.auth.issuer ?? publicOriginOf(t.config), {
      tenantId: org,
      workspaceId: ws,
      parentKeyId: parent.id,
      mintedBy: null,
      scopes: ['ai:chat'],
      models: null,
      subject: null,
      origins: null,
      rateLimitPerMinute: null,
      monthlyCallLimit: 3,
      issuedAt: now,
      expiresAt: now + 600,
    });
    await expect(chat(token)).rejects.toBeInstanceOf(AuthenticationError);
  });

  it('bad input: monthlyCallLimit without a subject, zero, negative, fractional, huge or a string is 400 VALIDATION_FAILED', async () => {
    const parent = await createApiKey(t, owner, org, ws, { scopes: ['ai:chat', 'tokens:mint'] });
    const post = (body: object) => t.app.inject({ method: 'POST', url: '/v1/tokens', payload: body, headers: { authorization: `Bearer ${parent.key}` } });
    for (const body of [{ monthlyCallLimit: 3 }, ...[0, -1, 1.5, 1e12, Number.MAX_SAFE_INTEGER + 2, '3', null].map((monthlyCallLimit) => ({ subject: 'bot-x', monthlyCallLimit }))]) {
      const res = await post(body);
      expect([res.statusCode, res.json().error.code], JSON.stringify(body)).toEqual([400, 'VALIDATION_FAILED']);
    }
    const ok = await post({ subject: 'bot-x', monthlyCallLimit: 1_000_000_000 });
    expect(expectStatus(ok, 201).json()).toMatchObject({ subject: 'bot-x', monthlyCallLimit: 1_000_000_000 });
  });
});
