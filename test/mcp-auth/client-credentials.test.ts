/**
 * The MCP authorization server's client_credentials grant (GW-5) with the stock MCP SDK: a backend
 * holding an API key with `mcp:tools` connects with the SDK's ClientCredentialsProvider, which finds
 * Gatehouse through the endpoint's 401 and metadata (RFC 9728, RFC 8414), gets an access token bound
 * to the workspace's endpoint (RFC 8707) and lists tools. Then the attacks on those tokens: another
 * audience, a tampered or expired token, a revoked grant, the AI routes, a wrong client secret.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signJwt } from '../../src/tokens/index.ts';
import { createApiKey, createOrgAndWorkspace, expectStatus } from '../support/gateway.ts';
import { echoTool, startMcpUpstream, type McpUpstream } from '../support/mcp-upstream.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';
import { putServer, review, startMcpApp, sync, type McpTestApp } from '../mcp/support.ts';

let t: McpTestApp;
let up: McpUpstream;
let owner: SignedInUser;
let org: string;
let ws: string;
let ws2: string;
let key: { key: string; id: string };
let clock = Date.now();

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
const resourceOf = (w: string) => `${t.url}/v1/mcp/${w}`;

async function token(form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${t.url}/v1/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form) });
}

async function accessToken(k = key, resource = resourceOf(ws)): Promise<string> {
  const res = await token({ grant_type: 'client_credentials', resource }, basic(k.id, k.key));
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

/** An MCP initialize request with `bearer`, as raw HTTP. */
async function mcpPost(w: string, bearer: string, extra: Record<string, string> = {}): Promise<Response> {
  return fetch(`${t.url}/v1/mcp/${w}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...extra },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
  });
}

beforeAll(async () => {
  up = await startMcpUpstream([echoTool]);
  t = await startMcpApp({ overrides: { 'rateLimit.enabled': false }, now: () => clock });
  owner = await signUpUser(t.app, t.mail, 'mcp-cc@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Mcp cc'));
  ws2 = (await createOrgAndWorkspace(t, owner, 'Mcp cc 2')).ws;
  await putServer(t, owner, org, ws, 'docs', { url: up.url });
  await sync(t, owner, org, ws, 'docs');
  await review(t, owner, org, ws, 'docs', 'echo', 'approved');
  key = await createApiKey(t, owner, org, ws, { scopes: ['mcp:tools'] });
});

afterAll(async () => {
  await t?.close();
  await up?.close();
});

describe('MCP OAuth: client_credentials with the stock SDK', () => {
  it('discovers Gatehouse as the authorization server and lists tools with an audience-bound access token', async () => {
    const challenge = (await mcpPost(ws, 'not-a-token')).headers.get('www-authenticate');
    expect(challenge).toBe(`Bearer error="invalid_token", scope="mcp:tools", resource_metadata="${t.url}/.well-known/oauth-protected-resource/v1/mcp/${ws}"`);
    const prm = await (await fetch(`${t.url}/.well-known/oauth-protected-resource/v1/mcp/${ws}`)).json();
    expect(prm).toMatchObject({ resource: resourceOf(ws), authorization_servers: [t.url] });
    const meta = (await (await fetch(`${t.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(meta).toMatchObject({ issuer: t.url, token_endpoint: `${t.url}/v1/oauth/token`, code_challenge_methods_supported: ['S256'] });

    const provider = new ClientCredentialsProvider({ clientId: key.id, clientSecret: key.key, clientName: 'backend', expectedIssuer: t.url });
    const client = new Client({ name: 'cc-client', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(resourceOf(ws)), { authProvider: provider }));
    const { tools } = await client.listTools();
    expect(tools.map((x) => x.name)).toEqual(['docs__echo']);
    const issued = provider.tokens();
    expect(issued?.token_type).toBe('Bearer');
    expect(issued?.refresh_token).toBeUndefined();
    // The token is a JWT bound to this endpoint, naming the key, never carrying it.
    const payload = JSON.parse(Buffer.from(issued?.access_token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
    expect(payload).toMatchObject({ aud: resourceOf(ws), iss: t.url, gh_key: key.id, scope: 'mcp:tools' });
    expect(JSON.stringify(payload)).not.toContain(key.key);
    await client.close();
  });

  it('attack: a wrong client secret, another key\'s id, or a key without mcp:tools is refused (invalid_client / unauthorized_client)', async () => {
    const other = await createApiKey(t, owner, org, ws, { scopes: ['ai:chat'] });
    const wrong = await token({ grant_type: 'client_credentials', resource: resourceOf(ws) }, basic(key.id, other.key));
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_client', gatehouse_code: 'OAUTH_INVALID_CLIENT' });
    const tampered = await token({ grant_type: 'client_credentials', resource: resourceOf(ws) }, basic(key.id, `${key.key.slice(0, -8)}AAAAAAAA`));
    expect(tampered.status).toBe(401);
    const noScope = await token({ grant_type: 'client_credentials', resource: resourceOf(ws) }, basic(other.id, other.key));
    expect(noScope.status).toBe(400);
    expect(await noScope.json()).toMatchObject({ error: 'unauthorized_client' });
  });

  it('attack: a token for another workspace\'s endpoint is not issued (invalid_target), and a token is refused by every endpoint but its own', async () => {
    const elsewhere = await token({ grant_type: 'client_credentials', resource: resourceOf(ws2) }, basic(key.id, key.key));
    expect(elsewhere.status).toBe(400);
    expect(await elsewhere.json()).toMatchObject({ error: 'invalid_target' });
    const missing = await token({ grant_type: 'client_credentials' }, basic(key.id, key.key));
    expect(await missing.json()).toMatchObject({ error: 'invalid_target' });

    const access = await accessToken();
    expect((await mcpPost(ws, access)).status).toBe(200);
    // Wrong audience: another workspace's MCP endpoint.
    const other = await mcpPost(ws2, access);
    expect(other.status).toBe(401);
    expect(((await other.json()) as { error: { data: { code: string } } }).error.data.code).toBe('UNAUTHENTICATED');
    // Not an AI gateway credential.
    const ai = await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${access}` } });
    expect(ai.status).toBe(401);
    expect(((await ai.json()) as { error: { message: string } }).error.message).toMatch(/MCP endpoint only/);
  });

  it('attack: a tampered token (payload or signature changed) is refused with 401', async () => {
    const access = await accessToken();
    const [h, p, s] = access.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, gh_ws: ws2, aud: resourceOf(ws2) })).toString('base64url')}.${s}`;
    expect((await mcpPost(ws2, forged)).status).toBe(401);
    const flipped = `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`;
    expect((await mcpPost(ws, flipped)).status).toBe(401);
  });

  it('attack: validly signed tokens for another resource URL, from another issuer, or of another type are refused (401)', async () => {
    const signer = await t.node.signingKeys.current('client-token');
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: t.url, aud: resourceOf(ws), sub: key.id, jti: 'j'.repeat(22), iat: now, exp: now + 300, gh_org: org, gh_ws: ws, gh_key: key.id, scope: 'mcp:tools' };
    expect((await mcpPost(ws, signJwt(signer, 'gh-mcp+jwt', claims))).status).toBe(200);
    // Same workspace id, but the audience is that workspace's endpoint on another server.
    expect((await mcpPost(ws, signJwt(signer, 'gh-mcp+jwt', { ...claims, aud: `https://other.example/v1/mcp/${ws}` }))).status).toBe(401);
    expect((await mcpPost(ws, signJwt(signer, 'gh-mcp+jwt', { ...claims, iss: 'https://other.example' }))).status).toBe(401);
    // A refresh token or a code is not an access token, whatever it names.
    expect((await mcpPost(ws, signJwt(signer, 'gh-mcp-rt+jwt', claims))).status).toBe(401);
    expect((await mcpPost(ws, signJwt(signer, 'gh-client+jwt', claims))).status).toBe(401);
  });

  it('attack: an expired token is refused with its own message; the client gets a new one', async () => {
    const access = await accessToken();
    clock += (t.config.mcp.oauth.accessTokenTtlSeconds + t.config.tokens.clockSkewSeconds + 1) * 1000;
    try {
      const res = await mcpPost(ws, access);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe('The access token has expired; refresh it.');
      expect((await mcpPost(ws, await accessToken())).status).toBe(200);
    } finally {
      clock = Date.now();
    }
  });

  it('attack: revoking the API key refuses its access tokens at once', async () => {
    const k = await createApiKey(t, owner, org, ws, { scopes: ['mcp:tools'] });
    const access = await accessToken(k);
    expect((await mcpPost(ws, access)).status).toBe(200);
    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys/${k.id}`, headers: owner.auth }), 204);
    expect((await mcpPost(ws, access)).status).toBe(401);
    const again = await token({ grant_type: 'client_credentials', resource: resourceOf(ws) }, basic(k.id, k.key));
    expect(again.status).toBe(401);
  });

  it('attack: a browser page cannot use an access token (403 ORIGIN_NOT_ALLOWED)', async () => {
    const res = await mcpPost(ws, await accessToken(), { origin: 'https://evil.example' });
    expect(res.status).toBe(403);
  });

  it('refuses a JSON body nowhere but answers OAuth errors for a malformed request', async () => {
    const res = await token({ grant_type: 'password', username: 'a', password: 'b' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'unsupported_grant_type' });
    expect(res.headers.get('cache-control')).toBe('no-store');
    const twice = await fetch(`${t.url}/v1/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&grant_type=authorization_code' });
    expect(twice.status).toBe(400);
    expect(await twice.json()).toMatchObject({ error: 'invalid_request' });
  });
});
