/**
 * The MCP authorization server's authorization code flow (GW-5) with the stock MCP SDK as the
 * client: discovery from the endpoint's 401, dynamic registration, PKCE S256, a member's consent,
 * the token exchange, tools listed; refresh when the access token expires. Then the attacks: no or
 * plain PKCE, a wrong verifier, an unregistered redirect URI, a forged client id, a code or refresh
 * token used twice (the grant is revoked), many redemptions of one code at once, a member without
 * the right or outside the org, a member removed after consenting.
 */
import { createHash, randomBytes } from 'node:crypto';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrgAndWorkspace, expectStatus } from '../support/gateway.ts';
import { echoTool, startMcpUpstream, type McpUpstream } from '../support/mcp-upstream.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';
import { auditData, putServer, review, startMcpApp, sync, type McpTestApp } from '../mcp/support.ts';
import { addMember, approveCode, consent, injectAt, listToolsWith, TestOAuthClient, tokenRequest, toConsent } from './support.ts';

let t: McpTestApp;
let up: McpUpstream;
let owner: SignedInUser;
let org: string;
let ws: string;
let clock = Date.now();
const REDIRECT = 'http://127.0.0.1:9/callback';

const resource = () => `${t.url}/v1/mcp/${ws}`;
const s256 = (v: string) => createHash('sha256').update(v).digest('base64url');

/** Registers a client (the SDK's request shape) and returns its id. */
async function register(redirect = REDIRECT): Promise<string> {
  const res = await fetch(`${t.url}/v1/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_name: 'Raw client', redirect_uris: [redirect] }) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { client_id: string }).client_id;
}

function authorizeUrl(clientId: string, extra: Record<string, string | undefined> = {}, verifier = 'v'.repeat(43)): string {
  const q: Record<string, string> = { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: s256(verifier), code_challenge_method: 'S256', resource: resource(), state: 'st-1' };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete q[k];
    else q[k] = v;
  }
  return `${t.url}/v1/oauth/authorize?${new URLSearchParams(q).toString()}`;
}

/** A code and access/refresh tokens for `user`, by raw requests. */
async function grant(user = owner): Promise<{ clientId: string; access: string; refresh: string; keyId: string }> {
  const clientId = await register();
  const verifier = randomBytes(32).toString('base64url');
  const code = await approveCode(t, user, authorizeUrl(clientId, {}, verifier));
  const res = await tokenRequest(t.url, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: clientId, resource: resource() });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; refresh_token: string };
  const keyId = (JSON.parse(Buffer.from(body.access_token.split('.')[1] ?? '', 'base64url').toString()) as { gh_key: string }).gh_key;
  return { clientId, access: body.access_token, refresh: body.refresh_token, keyId };
}

beforeAll(async () => {
  up = await startMcpUpstream([echoTool]);
  t = await startMcpApp({ overrides: { 'rateLimit.enabled': false }, now: () => clock });
  owner = await signUpUser(t.app, t.mail, 'mcp-code-owner@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Mcp code'));
  await putServer(t, owner, org, ws, 'docs', { url: up.url });
  await sync(t, owner, org, ws, 'docs');
  await review(t, owner, org, ws, 'docs', 'echo', 'approved');
});

afterAll(async () => {
  await t?.close();
  await up?.close();
});

describe('MCP OAuth: authorization code with PKCE, stock SDK client', () => {
  it('connects after a member\'s consent, lists tools, and refreshes an expired access token with a rotated refresh token', async () => {
    const provider = new TestOAuthClient(REDIRECT, 'Desk app');
    const transport = new StreamableHTTPClientTransport(new URL(resource()), { authProvider: provider });
    await expect(new Client({ name: 'desk', version: '1' }).connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(provider.authorizationUrl?.searchParams.get('code_challenge_method')).toBe('S256');
    expect(provider.authorizationUrl?.searchParams.get('resource')).toBe(resource());

    const preview = await injectAt(t, owner, 'POST', '/v1/oauth/consent/preview', { query: (await toConsent(provider.authorizationUrl as URL)).query });
    expect(preview.json()).toMatchObject({ client: { name: 'Desk app', redirectUri: REDIRECT }, org: { id: org, name: 'Mcp code' }, workspace: { id: ws }, scope: 'mcp:tools' });
    await transport.finishAuth(await approveCode(t, owner, provider.authorizationUrl as URL));

    const client = new Client({ name: 'desk', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(resource()), { authProvider: provider }));
    expect((await client.listTools()).tools.map((x) => x.name)).toEqual(['docs__echo']);
    const first = provider.tokens();
    expect(first?.refresh_token).toBeDefined();
    const granted = await auditData(t, org, 'mcp.oauth.granted');
    expect(granted.at(-1)?.data).toMatchObject({ workspace: ws, client: 'Desk app', redirectHost: '127.0.0.1:9' });

    clock += (t.config.mcp.oauth.accessTokenTtlSeconds + 60) * 1000;
    try {
      const later = new Client({ name: 'desk', version: '1' });
      await later.connect(new StreamableHTTPClientTransport(new URL(resource()), { authProvider: provider }));
      expect((await later.listTools()).tools).toHaveLength(1);
      expect(provider.tokens()?.refresh_token).not.toBe(first?.refresh_token);
      await later.close();
    } finally {
      clock = Date.now();
    }
    await client.close();
  });

  it('attack: an authorization request without PKCE, or with plain PKCE, goes back to the client as invalid_request', async () => {
    const clientId = await register();
    for (const extra of [{ code_challenge: undefined, code_challenge_method: undefined }, { code_challenge_method: 'plain', code_challenge: 'v'.repeat(43) }]) {
      const { status, location } = await toConsent(authorizeUrl(clientId, extra));
      expect(status).toBe(302);
      const back = new URL(location ?? '');
      expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
      expect(back.searchParams.get('error')).toBe('invalid_request');
      expect(back.searchParams.get('state')).toBe('st-1');
      expect(back.searchParams.get('code')).toBeNull();
    }
    // The consent API refuses the same request, whoever calls it.
    const direct = await consent(t, owner, Object.fromEntries(new URL(authorizeUrl(clientId, { code_challenge_method: 'plain' })).searchParams));
    expect(direct.statusCode).toBe(400);
    expect(direct.json().error.code).toBe('OAUTH_INVALID_REQUEST');
  });

  it('attack: an unregistered redirect URI or a forged client id is refused on the spot, never redirected to', async () => {
    const clientId = await register();
    const evil = await toConsent(authorizeUrl(clientId, { redirect_uri: 'https://attacker.example/cb' }));
    expect(evil.status).toBe(400);
    expect(evil.location).toBeNull();
    const [h, p, s] = clientId.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, gh_redirs: ['https://attacker.example/cb'] })).toString('base64url')}.${s}`;
    const res = await toConsent(authorizeUrl(forged, { redirect_uri: 'https://attacker.example/cb' }));
    expect(res.status).toBe(400);
    expect(res.location).toBeNull();
    const reg = await fetch(`${t.url}/v1/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['http://attacker.example/cb'] }) });
    expect(reg.status).toBe(400);
    expect(await reg.json()).toMatchObject({ error: 'invalid_redirect_uri' });
  });

  it('attack: a wrong PKCE verifier, another client or another redirect URI cannot redeem a code (invalid_grant)', async () => {
    const clientId = await register();
    const verifier = randomBytes(32).toString('base64url');
    const code = await approveCode(t, owner, authorizeUrl(clientId, {}, verifier));
    const base = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: clientId };
    for (const form of [{ ...base, code_verifier: randomBytes(32).toString('base64url') }, { ...base, code_verifier: verifier, client_id: await register() }, { ...base, code_verifier: verifier, redirect_uri: 'http://127.0.0.1:9/other' }, { ...base }]) {
      const res = await tokenRequest(t.url, form);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
    }
    // The rightful client still redeems it.
    expect((await tokenRequest(t.url, { ...base, code_verifier: verifier })).status).toBe(200);
  });

  it('attack: a code redeemed twice revokes the grant, and 10 concurrent redemptions of one code yield exactly one token', async () => {
    const clientId = await register();
    const verifier = randomBytes(32).toString('base64url');
    const code = await approveCode(t, owner, authorizeUrl(clientId, {}, verifier));
    const form = { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: clientId };
    const answers = await Promise.all(Array.from({ length: 10 }, () => tokenRequest(t.url, form)));
    const ok = answers.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    const access = ((await ok[0]?.json()) as { access_token: string }).access_token;
    for (const r of answers.filter((x) => x.status !== 200)) expect(await r.json()).toMatchObject({ error: 'invalid_grant' });
    // The reuse revoked the grant: the one token issued is refused too.
    expect((await listToolsWith(t.url, ws, access)).status).toBe(401);
    expect((await auditData(t, org, 'mcp.oauth.grant_revoked')).at(-1)?.data).toMatchObject({ reason: 'code reused' });
  });

  it('attack: a refresh token used twice revokes the grant (rotation with reuse detection)', async () => {
    const g = await grant();
    const first = await tokenRequest(t.url, { grant_type: 'refresh_token', refresh_token: g.refresh, client_id: g.clientId });
    expect(first.status).toBe(200);
    const rotated = (await first.json()) as { access_token: string; refresh_token: string };
    expect(rotated.refresh_token).not.toBe(g.refresh);
    // Absolute expiry: a rotation never extends the grant's end.
    const expOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as { exp: number }).exp;
    expect(expOf(rotated.refresh_token)).toBe(expOf(g.refresh));
    const replay = await tokenRequest(t.url, { grant_type: 'refresh_token', refresh_token: g.refresh, client_id: g.clientId });
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await listToolsWith(t.url, ws, rotated.access_token)).status).toBe(401);
    expect((await tokenRequest(t.url, { grant_type: 'refresh_token', refresh_token: rotated.refresh_token, client_id: g.clientId })).status).toBe(400);
  });

  it('attack: a refresh token past the grant\'s absolute end is refused, however often it was rotated', async () => {
    const g = await grant();
    clock += (t.config.mcp.oauth.refreshTokenTtlSeconds - 60) * 1000;
    try {
      const rotated = await tokenRequest(t.url, { grant_type: 'refresh_token', refresh_token: g.refresh, client_id: g.clientId });
      expect(rotated.status).toBe(200);
      clock += 120_000 + t.config.tokens.clockSkewSeconds * 1000;
      const late = await tokenRequest(t.url, { grant_type: 'refresh_token', refresh_token: ((await rotated.json()) as { refresh_token: string }).refresh_token, client_id: g.clientId });
      expect(late.status).toBe(400);
      expect(await late.json()).toMatchObject({ error: 'invalid_grant', error_description: 'The refresh token has expired.' });
    } finally {
      clock = Date.now();
    }
  });

  it('no code, access token or refresh token reaches the log', async () => {
    const g = await grant();
    await listToolsWith(t.url, ws, g.access);
    await tokenRequest(t.url, { grant_type: 'refresh_token', refresh_token: g.refresh, client_id: g.clientId });
    const log = t.logText();
    expect(log.length).toBeGreaterThan(1000);
    for (const secret of [g.access, g.refresh, g.access.split('.')[2] as string, g.refresh.split('.')[2] as string]) expect(log).not.toContain(secret);
  });

  it('attack: a viewer cannot approve (403), a stranger cannot see the workspace (404), and the client is told access_denied on a refusal', async () => {
    const viewer = await signUpUser(t.app, t.mail, 'mcp-code-viewer@example.com');
    await addMember(t.app, t.mail, owner, org, viewer, 'viewer');
    const stranger = await signUpUser(t.app, t.mail, 'mcp-code-stranger@example.com');
    const { query } = await toConsent(authorizeUrl(await register()));
    expect((await consent(t, viewer, query)).statusCode).toBe(403);
    expect((await consent(t, stranger, query)).statusCode).toBe(404);
    expect((await injectAt(t, stranger, 'POST', '/v1/oauth/consent/preview', { query })).statusCode).toBe(404);
    const denied = await consent(t, owner, query, 'deny');
    const back = new URL(denied.json<{ redirectTo: string }>().redirectTo);
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('code')).toBeNull();
  });

  it('attack: a member removed after consenting: the access token and the refresh token stop working', async () => {
    const editor = await signUpUser(t.app, t.mail, 'mcp-code-editor@example.com');
    await addMember(t.app, t.mail, owner, org, editor, 'editor');
    const g = await grant(editor);
    expect((await listToolsWith(t.url, ws, g.access)).status).toBe(200);
    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/members/${editor.userId}`, headers: owner.auth }), 204);
    expect((await listToolsWith(t.url, ws, g.access)).status).toBe(401);
    const refresh = await tokenRequest(t.url, { grant_type: 'refresh_token', refresh_token: g.refresh, client_id: g.clientId });
    expect(await refresh.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('the grant is an API key of the workspace: revoking it (or the client revoking its refresh token) ends the grant', async () => {
    const g = await grant();
    const list = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, headers: owner.auth }), 200).json<{ apiKeys: { id: string; name: string; scopes: string[] }[] }>().apiKeys;
    expect(list.find((k) => k.id === g.keyId)).toMatchObject({ name: 'MCP client: Raw client', scopes: ['mcp:tools'] });
    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys/${g.keyId}`, headers: owner.auth }), 204);
    expect((await listToolsWith(t.url, ws, g.access)).status).toBe(401);

    const h = await grant();
    const revoked = await fetch(`${t.url}/v1/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: h.refresh, client_id: h.clientId }) });
    expect(revoked.status).toBe(200);
    expect((await listToolsWith(t.url, ws, h.access)).status).toBe(401);
  });
});
