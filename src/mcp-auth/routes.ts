/**
 * The MCP authorization server's discovery, registration and authorization routes (GW-5):
 *   GET  /.well-known/oauth-authorization-server   metadata (RFC 8414)
 *   POST /v1/oauth/register                        dynamic client registration (RFC 7591), public clients
 *   GET  /v1/oauth/authorize                       checks the request, then sends the browser to the console's consent page
 *   POST /v1/oauth/consent/preview, /v1/oauth/consent   what the consent page shows, and the member's decision
 * The token and revocation endpoints are in token-routes.ts.
 *
 * Registration is stateless: the client id is a signed statement of the client's name and redirect
 * URIs (statements.ts), so an open registration endpoint stores nothing an anonymous caller sends.
 * The name is the client's own claim; the consent page shows it with the redirect URI's host.
 */
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { publicBaseOf } from '../server/public-base.ts';
import { defineRoute, type Principal, type RouteDef } from '../server/route.ts';
import { OAuthError, oauthErrors } from './errors.ts';
import type { Grants } from './grants.ts';
import { checkAuthorizationRequest, MCP_SCOPE, RedirectableError, redirectUriProblem, withQuery } from './requests.ts';
import { AUTHORIZE_PATH, REGISTER_PATH, REVOKE_PATH, TOKEN_PATH, type Statements } from './statements.ts';

export const CONSENT_PAGE = '/console/oauth/consent';

export interface AuthRoutesDeps {
  statements: Statements;
  grants: Grants;
  publicUrl: () => string | undefined;
  /** The org's and workspace's names, for the consent page. */
  names: (userId: string, orgId: string, wsId: string) => Promise<{ org: string; workspace: string }>;
}

const params = z.record(z.string().max(64), z.string().max(4096));
const AUTHORIZE_PARAMS = ['response_type', 'client_id', 'redirect_uri', 'code_challenge', 'code_challenge_method', 'state', 'scope', 'resource'] as const;
/** The authorization request's parameters (others are ignored, as RFC 6749 §3.1 asks); each at most once. */
const authorizeQuery = z.looseObject(Object.fromEntries(AUTHORIZE_PARAMS.map((p) => [p, z.string().max(4096).optional()])) as Record<(typeof AUTHORIZE_PARAMS)[number], z.ZodOptional<z.ZodString>>);
const registration = z.looseObject({
  redirect_uris: z.array(z.string()).min(1).max(5),
  client_name: z.string().trim().min(1).max(100).optional(),
  token_endpoint_auth_method: z.string().max(100).optional(),
  grant_types: z.array(z.string().max(100)).max(10).optional(),
  response_types: z.array(z.string().max(100)).max(10).optional(),
  scope: z.string().max(1000).optional(),
});
const registered = z.object({
  client_id: z.string(),
  client_id_issued_at: z.number(),
  client_name: z.string(),
  redirect_uris: z.array(z.string()),
  grant_types: z.array(z.string()),
  response_types: z.array(z.string()),
  token_endpoint_auth_method: z.literal('none'),
  scope: z.string(),
});
const metadata = z.object({
  issuer: z.string(),
  authorization_endpoint: z.string(),
  token_endpoint: z.string(),
  registration_endpoint: z.string(),
  revocation_endpoint: z.string(),
  response_types_supported: z.array(z.string()),
  grant_types_supported: z.array(z.string()),
  code_challenge_methods_supported: z.array(z.string()),
  token_endpoint_auth_methods_supported: z.array(z.string()),
  revocation_endpoint_auth_methods_supported: z.array(z.string()),
  scopes_supported: z.array(z.string()),
  authorization_response_iss_parameter_supported: z.boolean(),
});
const preview = z.object({
  client: z.object({ name: z.string(), redirectUri: z.string() }),
  org: z.object({ id: z.string(), name: z.string() }),
  workspace: z.object({ id: z.string(), name: z.string() }),
  scope: z.string(),
});

function userOf(principal: Principal | undefined): Principal {
  if (!principal || principal.kind !== 'user') throw new AppError('UNAUTHENTICATED');
  return principal;
}

/** The consent routes refuse a request that should never have reached the page, with the OAuth reason. */
async function checked(deps: AuthRoutesDeps, base: string, query: Record<string, string>) {
  try {
    return await checkAuthorizationRequest(deps.statements, base, query);
  } catch (err) {
    if (err instanceof RedirectableError) throw err.error;
    throw err;
  }
}

function registerClientRoute(deps: AuthRoutesDeps): RouteDef {
  return defineRoute({
    method: 'POST',
    url: REGISTER_PATH,
    summary: 'Dynamic client registration (RFC 7591) for MCP clients: public clients (no secret) with the authorization_code and refresh_token grants. The client_id returned is signed; nothing is stored.',
    guard: { kind: 'public' },
    permission: null,
    rateCategory: 'auth',
    errorFormat: oauthErrors,
    schema: { body: registration, response: { 201: registered } },
    handler: async ({ body, request, reply }) => {
      const base = publicBaseOf(deps.publicUrl(), request);
      if (body.token_endpoint_auth_method !== undefined && body.token_endpoint_auth_method !== 'none') {
        throw new OAuthError('OAUTH_INVALID_CLIENT_METADATA', 'Only public clients register (token_endpoint_auth_method "none"); a backend uses client_credentials with an API key.');
      }
      const grants = body.grant_types ?? ['authorization_code', 'refresh_token'];
      if (grants.some((g) => g !== 'authorization_code' && g !== 'refresh_token')) throw new OAuthError('OAUTH_INVALID_CLIENT_METADATA', 'grant_types may list authorization_code and refresh_token only.');
      if ((body.response_types ?? ['code']).some((r) => r !== 'code')) throw new OAuthError('OAUTH_INVALID_CLIENT_METADATA', 'response_types may list code only.');
      body.redirect_uris.forEach((uri, i) => {
        const problem = redirectUriProblem(uri);
        if (problem !== null) throw new OAuthError('OAUTH_INVALID_REDIRECT_URI', `redirect_uris[${i}] ${problem}.`);
      });
      const name = body.client_name ?? 'Unnamed MCP client';
      const clientId = await deps.statements.client(base, name, body.redirect_uris);
      reply.code(201).header('cache-control', 'no-store');
      return {
        client_id: clientId,
        client_id_issued_at: deps.statements.seconds(),
        client_name: name,
        redirect_uris: body.redirect_uris,
        grant_types: grants,
        response_types: ['code'],
        token_endpoint_auth_method: 'none' as const,
        scope: MCP_SCOPE,
      };
    },
  });
}

function consentRoutes(deps: AuthRoutesDeps): RouteDef[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/oauth/consent/preview',
      summary: 'What the consent page shows for an authorization request (its query parameters): the client\'s claimed name and redirect URI, the org and workspace of the requested MCP endpoint. 403 when the member may not manage the workspace\'s API keys.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'read',
      schema: { body: z.strictObject({ query: params }), response: { 200: preview } },
      handler: async ({ body, principal, request }) => {
        const user = userOf(principal);
        const req = await checked(deps, publicBaseOf(deps.publicUrl(), request), body.query);
        const org = await deps.grants.orgFor(user, req.workspaceId);
        const names = await deps.names(user.id, org, req.workspaceId);
        return { client: { name: req.client.name, redirectUri: req.redirectUri }, org: { id: org, name: names.org }, workspace: { id: req.workspaceId, name: names.workspace }, scope: req.scope };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/oauth/consent',
      summary:
        'The member\'s decision on an authorization request. Approve: an API key with the scope mcp:tools is created for the client in the workspace (named after it, its secret never shown; revoke it to end the grant) and the answer is the redirect URI with a single-use code. Deny: the redirect URI with error=access_denied.',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'write',
      schema: { body: z.strictObject({ query: params, decision: z.enum(['approve', 'deny']) }), response: { 200: z.object({ redirectTo: z.string() }) } },
      handler: async ({ body, principal, request }) => {
        const user = userOf(principal);
        const base = publicBaseOf(deps.publicUrl(), request);
        const req = await checked(deps, base, body.query);
        if (body.decision === 'deny') {
          return { redirectTo: withQuery(req.redirectUri, { error: 'access_denied', error_description: 'The user denied the request.', state: req.state, iss: base }) };
        }
        const code = await deps.grants.approve(base, user, req);
        return { redirectTo: withQuery(req.redirectUri, { code, state: req.state, iss: base }) };
      },
    }),
  ];
}

/** Metadata, registration and the authorization endpoint. */
export function authorizationRoutes(deps: AuthRoutesDeps): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/.well-known/oauth-authorization-server',
      summary: 'OAuth 2.0 authorization server metadata (RFC 8414) of the MCP authorization server: authorization code with PKCE S256, refresh tokens, client_credentials with an API key.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: metadata } },
      handler: async ({ request }) => {
        const base = publicBaseOf(deps.publicUrl(), request);
        return {
          issuer: base,
          authorization_endpoint: base + AUTHORIZE_PATH,
          token_endpoint: base + TOKEN_PATH,
          registration_endpoint: base + REGISTER_PATH,
          revocation_endpoint: base + REVOKE_PATH,
          response_types_supported: ['code'],
          grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
          revocation_endpoint_auth_methods_supported: ['none'],
          scopes_supported: [MCP_SCOPE],
          authorization_response_iss_parameter_supported: true,
        };
      },
    }),
    registerClientRoute(deps),
    defineRoute({
      method: 'GET',
      url: AUTHORIZE_PATH,
      summary:
        'The authorization endpoint (authorization code with PKCE S256, RFC 8707 resource = one workspace\'s MCP endpoint). An unknown client or redirect URI is answered here (400); other errors go to the redirect URI; a valid request goes on to the console\'s consent page.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'auth',
      errorFormat: oauthErrors,
      schema: { querystring: authorizeQuery, response: { 302: z.null() } },
      handler: async ({ query: raw, request, reply }) => {
        const base = publicBaseOf(deps.publicUrl(), request);
        const query: Record<string, string> = {};
        for (const p of AUTHORIZE_PARAMS) if (raw[p] !== undefined) query[p] = raw[p];
        reply.header('cache-control', 'no-store');
        try {
          await checkAuthorizationRequest(deps.statements, base, query);
        } catch (err) {
          if (!(err instanceof RedirectableError)) throw err;
          reply.code(302).header('location', err.location(base));
          return null;
        }
        reply.code(302).header('location', `${CONSENT_PAGE}?${new URLSearchParams(query).toString()}`);
        return null;
      },
    }),
    ...consentRoutes(deps),
  ];
}
