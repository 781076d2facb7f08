/**
 * The MCP authorization server's token and revocation endpoints (GW-5; RFC 6749 §3.2, RFC 7009),
 * form-encoded as the standard requires. Client authentication:
 *   - public clients (registered, authorization_code / refresh_token): their client_id, no secret;
 *   - client_credentials: client_id = the API key's id (its 16 characters after `gatehouse_`),
 *     client_secret = the API key, by HTTP Basic or in the form; the key needs `mcp:tools`.
 * Answers carry `Cache-Control: no-store`; errors are OAuth error objects (errors.ts).
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseApiKey } from '../gateway/index.ts';
import type { Principal, RouteDef } from '../server/route.ts';
import { defineRoute } from '../server/route.ts';
import { publicBaseOf } from '../server/public-base.ts';
import { OAuthError, oauthErrors } from './errors.ts';
import type { Grants } from './grants.ts';
import { MCP_SCOPE, clientOf } from './requests.ts';
import { REVOKE_PATH, TOKEN_PATH, type Statements } from './statements.ts';

export interface TokenRoutesDeps {
  statements: Statements;
  grants: Grants;
  publicUrl: () => string | undefined;
  /** The gateway's API key verifier (the apiKey guard's). */
  verifyKey: (presented: string, scope: string, request: FastifyRequest) => Promise<Principal | null>;
}

const form = z.record(z.string().max(64), z.string().max(8192));
const tokenResponse = z.object({ access_token: z.string(), token_type: z.literal('Bearer'), expires_in: z.number(), scope: z.string(), refresh_token: z.string().optional() });

/** The client's credentials: HTTP Basic (RFC 6749 §2.3.1, form-urlencoded parts) or the form, never both. */
function clientCredentialsOf(request: FastifyRequest, f: Readonly<Record<string, string>>): { id: string | undefined; secret: string | undefined } {
  const header = request.headers.authorization;
  if (header === undefined) return { id: f.client_id, secret: f.client_secret };
  const m = /^Basic ([A-Za-z0-9+/]+={0,2})$/.exec(header);
  if (!m?.[1]) throw new OAuthError('OAUTH_INVALID_CLIENT', 'The Authorization header is not HTTP Basic.');
  if (f.client_secret !== undefined) throw new OAuthError('OAUTH_INVALID_REQUEST', 'The client authenticated twice (Basic and client_secret).');
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new OAuthError('OAUTH_INVALID_CLIENT', 'The Basic credentials have no colon.');
  try {
    const id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    if (f.client_id !== undefined && f.client_id !== id) throw new OAuthError('OAUTH_INVALID_REQUEST', 'client_id differs from the Basic credentials.');
    return { id, secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')) };
  } catch (err) {
    if (err instanceof OAuthError) throw err;
    throw new OAuthError('OAUTH_INVALID_CLIENT', 'The Basic credentials are not properly encoded.');
  }
}

async function apiKeyClient(deps: TokenRoutesDeps, request: FastifyRequest, id: string | undefined, secret: string | undefined) {
  const parsed = secret === undefined ? null : parseApiKey(secret);
  if (secret === undefined || parsed === null) throw new OAuthError('OAUTH_INVALID_CLIENT', 'client_credentials needs client_secret = an API key of the workspace.');
  if (id !== parsed.id) throw new OAuthError('OAUTH_INVALID_CLIENT', 'client_id must be the API key\'s id.');
  const key = await deps.verifyKey(secret, MCP_SCOPE, request);
  if (key === null || key.kind !== 'apiKey' || key.tenantId === undefined || key.workspaceId === undefined) throw new OAuthError('OAUTH_INVALID_CLIENT', 'The API key is not valid.');
  return { id: key.id, tenantId: key.tenantId, workspaceId: key.workspaceId, scopes: key.scopes ?? [] };
}

export function tokenRoutes(deps: TokenRoutesDeps): RouteDef[] {
  /** A registered (public) client: its id; `credential` is what it sent as a secret, and must be nothing. */
  const publicClient = async (base: string, id: string | undefined, credential: string | undefined): Promise<string> => {
    if (credential !== undefined) throw new OAuthError('OAUTH_INVALID_CLIENT', 'Registered clients are public: they have no secret.');
    return (await clientOf(deps.statements, base, id, 'OAUTH_INVALID_CLIENT')).clientId;
  };
  return [
    defineRoute({
      method: 'POST',
      url: TOKEN_PATH,
      summary:
        'The token endpoint for MCP clients: authorization_code (with the PKCE code_verifier), refresh_token (single-use, rotated) and client_credentials (client_id = API key id, client_secret = API key with mcp:tools). Access tokens are bound to one workspace\'s MCP endpoint (resource, RFC 8707).',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      formBody: true,
      errorFormat: oauthErrors,
      schema: { body: form, response: { 200: tokenResponse } },
      handler: async ({ body, request, reply }) => {
        const base = publicBaseOf(deps.publicUrl(), request);
        const client = clientCredentialsOf(request, body);
        reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
        switch (body.grant_type) {
          case 'authorization_code':
            return deps.grants.redeemCode(base, body, await publicClient(base, client.id, client.secret));
          case 'refresh_token':
            return deps.grants.refresh(base, body, await publicClient(base, client.id, client.secret));
          case 'client_credentials':
            return deps.grants.clientCredentials(base, body, await apiKeyClient(deps, request, client.id, client.secret));
          case undefined:
            throw new OAuthError('OAUTH_INVALID_REQUEST', 'grant_type is missing.');
          default:
            throw new OAuthError('OAUTH_UNSUPPORTED_GRANT_TYPE');
        }
      },
    }),
    defineRoute({
      method: 'POST',
      url: REVOKE_PATH,
      summary: 'Token revocation (RFC 7009) for public MCP clients: a refresh token ends its whole grant (its API key is revoked). Any other token is ignored; the answer is 200 either way.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      formBody: true,
      errorFormat: oauthErrors,
      schema: { body: form, response: { 200: z.object({}) } },
      handler: async ({ body, request, reply }) => {
        const base = publicBaseOf(deps.publicUrl(), request);
        if (body.token === undefined) throw new OAuthError('OAUTH_INVALID_REQUEST', 'token is missing.');
        const client = clientCredentialsOf(request, body);
        reply.header('cache-control', 'no-store');
        await deps.grants.revokeToken(base, body.token, client.id === undefined ? undefined : await publicClient(base, client.id, client.secret));
        return {};
      },
    }),
  ];
}
