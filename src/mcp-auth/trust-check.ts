/**
 * The trust report's live check of the MCP endpoint's authentication (GW-5), by requests to the
 * node itself: an MCP request without a credential is refused 401 and names its resource metadata;
 * the authorization server's metadata offers PKCE S256 only; an access token signed now for one
 * workspace's endpoint is refused at another's for its audience (not merely for an unknown key);
 * an authorization request with `plain` PKCE goes back to the client as invalid_request. Nothing is
 * stored: the client id is stateless, the token names no real key.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { probeAddress, type TrustCheck, type TrustCheckResult } from '../trust/index.ts';
import type { Statements } from './statements.ts';

const AUDIENCE_REFUSAL = 'The access token is not valid for this MCP endpoint.';
const ACCEPT = 'application/json, text/event-stream';
/** The checks' own client: an address of TEST-NET-1, so the probes count against no real client's rate limits. */
const probe = () => ({ remoteAddress: probeAddress(), headers: { 'user-agent': 'gatehouse-trust-report' } });

async function mcpPost(app: FastifyInstance, ws: string, bearer?: string) {
  const res = await app.inject({ method: 'POST', url: `/v1/mcp/${ws}`, remoteAddress: probeAddress(), headers: { 'user-agent': 'gatehouse-trust-report', accept: ACCEPT, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) }, payload: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} } });
  const message = (res.json() as { error?: { message?: string } }).error?.message ?? '';
  return { status: res.statusCode, message, challenge: String(res.headers['www-authenticate'] ?? '') };
}

/** Whether `plain` PKCE is sent back as invalid_request, for a client registered just now. */
async function plainPkceRefused(app: FastifyInstance): Promise<boolean> {
  const redirect = 'https://trust-check.invalid/callback';
  const reg = await app.inject({ method: 'POST', url: '/v1/oauth/register', ...probe(), payload: { client_name: 'trust report', redirect_uris: [redirect] } });
  const clientId = (reg.json() as { client_id?: string }).client_id ?? '';
  const query = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirect, code_challenge: randomBytes(32).toString('base64url'), code_challenge_method: 'plain', resource: 'x' });
  const res = await app.inject({ method: 'GET', url: `/v1/oauth/authorize?${query.toString()}`, ...probe() });
  const location = String(res.headers.location ?? '');
  return res.statusCode === 302 && location.startsWith(redirect) && new URL(location).searchParams.get('error') === 'invalid_request';
}

export function mcpAuthTrustCheck(statements: Statements): TrustCheck {
  return {
    control: 'GW-5',
    name: 'mcp-endpoint-authentication',
    run: async (ctx): Promise<TrustCheckResult> => {
      const app = ctx.app;
      if (!app) return { state: 'not verified', evidence: [], why: 'the server is not built yet' };
      const evidence: string[] = [];
      const ws = randomUUID();
      const anonymous = await mcpPost(app, ws);
      evidence.push(`an MCP request without a credential: ${anonymous.status}${anonymous.challenge.includes('resource_metadata=') ? ', naming its resource metadata' : ''}`);
      if (anonymous.status !== 401) return { state: 'failed', evidence, why: 'the MCP endpoint answers a request without a credential' };
      const meta = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server', ...probe() })).json() as { issuer?: string; code_challenge_methods_supported?: string[] };
      const methods = meta.code_challenge_methods_supported ?? [];
      evidence.push(`authorization server metadata: PKCE ${methods.join(', ') || 'none'}`);
      if (methods.length !== 1 || methods[0] !== 'S256' || !meta.issuer) return { state: 'failed', evidence, why: 'the authorization server does not require PKCE S256' };
      const token = await statements.access(meta.issuer, `${meta.issuer}/v1/mcp/${ws}`, { gh_org: randomUUID(), gh_ws: ws, gh_key: 'trust-check', scope: 'mcp:tools' }, 60);
      const elsewhere = await mcpPost(app, randomUUID(), token);
      const audienceRefused = elsewhere.status === 401 && elsewhere.message === AUDIENCE_REFUSAL;
      evidence.push(`an access token for one workspace's endpoint at another's: ${elsewhere.status}${audienceRefused ? ' (its audience refused)' : ''}`);
      if (!audienceRefused) return { state: 'failed', evidence, why: 'an access token is not bound to its endpoint (audience)' };
      const pkce = await plainPkceRefused(app);
      evidence.push(`an authorization request with plain PKCE: ${pkce ? 'sent back as invalid_request' : 'not refused'}`);
      if (!pkce) return { state: 'failed', evidence, why: 'the authorization endpoint accepts a request without S256 PKCE' };
      return { state: 'active', evidence };
    },
  };
}
