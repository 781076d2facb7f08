/**
 * Short-lived client tokens (GW-6) on one embedded node: minting from an API key with
 * `tokens:mint` and by a member; the stock SDKs use a token as their key; offline verification
 * with the JWKS; every refusal (expired at the exact tolerance, tampered, wrong audience, an access
 * token in either direction, wrong workspace, wrong origin, scope or model outside the token,
 * revoked parent) in the vendor's shape; the per-subject rate limit under concurrency; usage and
 * audit carry the subject; CORS of the AI routes.
 */
import Anthropic from '@anthropic-ai/sdk';
import { createLocalJWKSet, jwtVerify } from 'jose';
import OpenAI, { AuthenticationError, PermissionDeniedError, RateLimitError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicOriginOf } from '../../src/config/schema.ts';
import { signClientToken } from '../../src/tokens/jwt.ts';
import { createApiKey, createOrgAndWorkspace, createWorkspace, expectStatus, startGatewayApp, type GatewayTestApp } from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const messages = [{ role: 'user' as const, content: 'Say hello.' }];
let t: GatewayTestApp;
let owner: SignedInUser;
let org: string;
let ws: string;
let otherWs: string;
let parent: { key: string; id: string };
// Stops the server's clock at an instant (token expiry) without touching the wall clock.
let frozenAt: number | undefined;

beforeAll(async () => {
  t = await startGatewayApp({ now: () => frozenAt ?? Date.now() });
  owner = await signUpUser(t.app, t.mail, 'tokens-owner@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Tokens'));
  otherWs = await createWorkspace(t, owner, org, 'Other');
  parent = await createApiKey(t, owner, org, ws, { scopes: ['ai:chat', 'ai:embeddings', 'ai:models', 'tokens:mint'] });
});

afterAll(async () => {
  await t?.close();
});

const openai = (apiKey: string, extra: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}): OpenAI => new OpenAI({ apiKey, baseURL: `${t.url}/v1`, maxRetries: 0, timeout: 10_000, ...extra });

async function mint(body: Record<string, unknown> = {}, key = parent.key): Promise<{ token: string; tokenId: string; expiresAt: string; [k: string]: unknown }> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: body, headers: { authorization: `Bearer ${key}` } });
  return expectStatus(res, 201).json();
}

async function caught(promise: Promise<unknown>): Promise<{ err: unknown; status?: number; code?: string | null }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { status?: number; code?: string | null };
    return { err, ...(e.status !== undefined ? { status: e.status } : {}), code: e.code ?? null };
  }
  throw new Error('expected a refusal');
}

/** A token signed with the node's current client-token key, claims as given (a forger who holds no key cannot do this). */
async function signedWith(claims: Record<string, unknown>): Promise<string> {
  const signer = await t.node.signingKeys.current('client-token');
  const now = Math.floor(Date.now() / 1000);
  return signClientToken(signer, t.config.auth.issuer ?? publicOriginOf(t.config), {
    tenantId: org,
    workspaceId: ws,
    parentKeyId: parent.id,
    mintedBy: null,
    scopes: ['ai:chat'],
    models: null,
    subject: null,
    origins: null,
    rateLimitPerMinute: null,
    monthlyCallLimit: null,
    issuedAt: now,
    expiresAt: now + 600,
    ...claims,
  }).token;
}

describe('minting', () => {
  it('a key with tokens:mint mints a token the OpenAI and Anthropic SDKs use as their key', async () => {
    const minted = await mint({ subject: 'bot-7' });
    expect(minted).toMatchObject({ tokenType: 'Bearer', workspaceId: ws, scopes: ['ai:chat', 'ai:embeddings', 'ai:models'], subject: 'bot-7', expiresIn: 600 });
    expect((await openai(minted.token).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    const claude = new Anthropic({ apiKey: minted.token, baseURL: t.url, maxRetries: 0, timeout: 10_000 });
    expect((await claude.messages.create({ model: 'claude-3', max_tokens: 16, messages })).content.length).toBeGreaterThan(0);
  });

  it('the token verifies offline with the JWKS: EdDSA, kid, typ gh-client+jwt, aud gatehouse:gateway, and holds no secret', async () => {
    const { token } = await mint({ subject: 'user-1' });
    const jwks = (await t.app.inject({ url: '/.well-known/jwks.json' })).json();
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { audience: 'gatehouse:gateway', typ: 'gh-client+jwt', algorithms: ['EdDSA'] });
    expect(protectedHeader.kid).toBe((await t.node.signingKeys.current('client-token')).kid);
    expect(payload).toMatchObject({ sub: 'user-1', gh_ws: ws, gh_key: parent.id, scope: 'ai:chat ai:embeddings ai:models' });
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(token).not.toContain(parent.key.slice(26));
    expect(JSON.stringify(payload)).not.toMatch(/gatehouse_/);
  });

  it('refuses a key without tokens:mint, scopes the key does not hold, lifetimes over an hour, a rate limit above the key\'s, and bad origins', async () => {
    const plain = await createApiKey(t, owner, org, ws);
    const noMint = await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: {}, headers: { authorization: `Bearer ${plain.key}` } });
    expect(noMint.statusCode).toBe(403);
    const chatOnly = await createApiKey(t, owner, org, ws, { scopes: ['ai:chat', 'tokens:mint'], rateLimitPerMinute: 10 });
    const post = (body: object) => t.app.inject({ method: 'POST', url: '/v1/tokens', payload: body, headers: { authorization: `Bearer ${chatOnly.key}` } });
    expect((await post({ scopes: ['ai:embeddings'] })).json().error.code).toBe('TOKEN_SCOPE_NOT_HELD');
    expect((await post({ scopes: ['tokens:mint'] })).json().error.code).toBe('VALIDATION_FAILED');
    expect((await post({ ttlSeconds: 3601 })).json().error.code).toBe('VALIDATION_FAILED');
    expect((await post({ rateLimitPerMinute: 11 })).json().error.code).toBe('VALIDATION_FAILED');
    for (const origin of ['http://evil.example', 'https://a.example/path', 'javascript:alert(1)']) expect((await post({ allowedOrigins: [origin] })).json().error.code).toBe('VALIDATION_FAILED');
    expect((await post({ rateLimitPerMinute: 10, allowedOrigins: ['https://app.example', 'http://127.0.0.1:5173'] })).statusCode).toBe(201);
  });

  it('attack: a token cannot mint tokens', async () => {
    const { token } = await mint();
    const res = await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: {}, headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(403);
  });

  it('a member who manages keys mints from a named key of the workspace; a key of another workspace is 404', async () => {
    const res = await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/tokens`, payload: { apiKey: parent.id, scopes: ['ai:chat'] }, headers: owner.auth });
    const { token } = expectStatus(res, 201).json();
    expect((await openai(token).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    const other = await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${otherWs}/tokens`, payload: { apiKey: parent.id }, headers: owner.auth });
    expect(other.statusCode).toBe(404);
  });

  it('a token a member minted ends with the member\'s session (logout-all), on the next call', async () => {
    const member = await signUpUser(t.app, t.mail, 'tokens-member@example.com');
    const own = await createOrgAndWorkspace(t, member, 'Member org');
    const memberKey = await createApiKey(t, member, own.org, own.ws, { scopes: ['ai:chat'] });
    const res = await t.app.inject({ method: 'POST', url: `/v1/orgs/${own.org}/workspaces/${own.ws}/tokens`, payload: { apiKey: memberKey.id }, headers: member.auth });
    const { token } = expectStatus(res, 201).json();
    expect((await openai(token).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expectStatus(await t.app.inject({ method: 'POST', url: '/v1/auth/logout-all', payload: {}, headers: member.auth }), 200);
    expect((await caught(openai(token).chat.completions.create({ model: 'mock-model', messages }))).err).toBeInstanceOf(AuthenticationError);
    // The key itself is untouched.
    expect((await openai(memberKey.key).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
  });

  it('each mint is an audit event in the org\'s log carrying the subject, never the token', async () => {
    const { token, tokenId } = await mint({ subject: 'audited-bot' });
    const events = (await t.node.audit.list(org, { action: 'clienttoken.minted', limit: 50 })) as unknown as { events?: unknown[] } | unknown[];
    const text = JSON.stringify(events);
    expect(text).toContain(tokenId);
    expect(text).toContain('audited-bot');
    expect(text).not.toContain(token.split('.')[2]);
  });
});

describe('refusals, in the vendor\'s shape', () => {
  it('expiry is exact: accepted until exp + tolerance, refused from then on (401 AuthenticationError)', async () => {
    const { token } = await mint({ ttlSeconds: 60 });
    const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp as number;
    const skew = t.config.tokens.clockSkewSeconds;
    try {
      frozenAt = (exp + skew) * 1000 - 1;
      expect((await openai(token).models.list()).data.length).toBeGreaterThan(0);
      frozenAt = (exp + skew) * 1000;
      const refused = await caught(openai(token).models.list());
      expect(refused.err).toBeInstanceOf(AuthenticationError);
      expect((refused.err as Error).message).toContain('expired');
    } finally {
      frozenAt = undefined;
    }
  });

  it('attack: a tampered token (payload changed, signature kept) is refused', async () => {
    const { token } = await mint({ scopes: ['ai:models'] });
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.scope = 'ai:chat ai:models';
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    expect((await caught(openai(forged).chat.completions.create({ model: 'mock-model', messages }))).err).toBeInstanceOf(AuthenticationError);
  });

  it('attack: a token with another audience is refused, though signed with the client-token key', async () => {
    const good = await signedWith({});
    expect((await openai(good).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    const [h, p] = good.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.aud = 'gatehouse';
    const input = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const signer = await t.node.signingKeys.current('client-token');
    const wrongAud = `${input}.${signer.sign(Buffer.from(input)).toString('base64url')}`;
    expect((await caught(openai(wrongAud).chat.completions.create({ model: 'mock-model', messages }))).err).toBeInstanceOf(AuthenticationError);
  });

  it('attack: a user\'s session access token is no gateway credential, and a client token is no session', async () => {
    expect((await caught(openai(owner.access).chat.completions.create({ model: 'mock-model', messages }))).err).toBeInstanceOf(AuthenticationError);
    const { token } = await mint();
    const me = await t.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.statusCode).toBe(401);
  });

  it('attack: a validly signed token naming another workspace than its parent key\'s is refused', async () => {
    const forged = await signedWith({ workspaceId: otherWs });
    expect((await caught(openai(forged).chat.completions.create({ model: 'mock-model', messages }))).err).toBeInstanceOf(AuthenticationError);
  });

  it('a scope outside the token is 403 PermissionDenied; a model outside it is 403 and left out of /v1/models', async () => {
    const { token } = await mint({ scopes: ['ai:chat', 'ai:models'], models: ['mock-model'] });
    const embed = await caught(openai(token).embeddings.create({ model: 'mock-embed', input: 'x' }));
    expect(embed.err).toBeInstanceOf(PermissionDeniedError);
    const other = await caught(openai(token).chat.completions.create({ model: 'mock-other', messages }));
    expect(other.err).toBeInstanceOf(PermissionDeniedError);
    expect(other.code).toBe('credential_model_not_allowed');
    expect((await openai(token).models.list()).data.map((m) => m.id)).toEqual(['mock-model']);
  });

  it('attack: an Origin the token does not list is 403 ORIGIN_NOT_ALLOWED; a listed one passes; an API key from a foreign page is refused too', async () => {
    const { token } = await mint({ allowedOrigins: ['https://app.example'] });
    const evil = await caught(openai(token, { defaultHeaders: { origin: 'https://evil.example' } }).chat.completions.create({ model: 'mock-model', messages }));
    expect(evil.err).toBeInstanceOf(PermissionDeniedError);
    expect(evil.code).toBe('origin_not_allowed');
    expect((await openai(token, { defaultHeaders: { origin: 'https://app.example' } }).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    const { token: noOrigins } = await mint();
    expect((await caught(openai(noOrigins, { defaultHeaders: { origin: 'https://app.example' } }).models.list())).code).toBe('origin_not_allowed');
    expect((await caught(openai(parent.key, { defaultHeaders: { origin: 'https://app.example' } }).models.list())).code).toBe('origin_not_allowed');
  });

  it('revoking the parent key refuses every token minted from it at once', async () => {
    const own = await createApiKey(t, owner, org, ws, { scopes: ['ai:chat', 'tokens:mint'] });
    const tokens = [(await mint({}, own.key)).token, (await mint({ subject: 's2' }, own.key)).token];
    for (const token of tokens) expect((await openai(token).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys/${own.id}`, headers: owner.auth }), 204);
    for (const token of tokens) expect((await caught(openai(token).chat.completions.create({ model: 'mock-model', messages }))).err).toBeInstanceOf(AuthenticationError);
  });
});

describe('per-subject limits, usage and CORS', () => {
  it('attack: 20 concurrent calls of one subject through two tokens at 5 a minute: exactly 5 pass; another subject is not held back', async () => {
    const [a, b] = [await mint({ subject: 'greedy-bot', rateLimitPerMinute: 5 }), await mint({ subject: 'greedy-bot', rateLimitPerMinute: 5 })];
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => openai((i % 2 ? a : b).token).chat.completions.create({ model: 'mock-model', messages })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(RateLimitError);
    const calm = await mint({ subject: 'calm-bot', rateLimitPerMinute: 5 });
    expect((await openai(calm.token).chat.completions.create({ model: 'mock-model', messages })).choices).toHaveLength(1);
  });

  it('usage records carry the token\'s subject', async () => {
    const { token } = await mint({ subject: 'metered-user' });
    await openai(token).chat.completions.create({ model: 'mock-model', messages });
    await t.node.gateway.meter.flush();
    const { rows } = await t.node.db.withTenant(org, (tx) => tx.query<{ n: number }>("select coalesce(sum(requests), 0)::int as n from usage_records where subject = 'metered-user' and api_key_id = $1", [parent.id]));
    expect(rows[0]?.n).toBe(1);
  });

  it('CORS: AI routes answer preflights from any origin without credentials; other routes only for configured origins', async () => {
    const preflight = (url: string) =>
      t.app.inject({ method: 'OPTIONS', url, headers: { origin: 'https://any.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-stainless-os' } });
    const ai = await preflight('/v1/chat/completions');
    expect(ai.statusCode).toBe(204);
    expect(ai.headers['access-control-allow-origin']).toBe('https://any.example');
    expect(ai.headers['access-control-allow-credentials']).toBeUndefined();
    expect(String(ai.headers['access-control-allow-headers'])).toContain('x-stainless-os');
    const mgmt = await preflight(`/v1/orgs/${org}/workspaces`);
    expect(mgmt.headers['access-control-allow-origin']).toBeUndefined();
  });
});
