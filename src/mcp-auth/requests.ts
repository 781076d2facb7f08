/**
 * Checks of what clients send the MCP authorization server: redirect URIs at registration,
 * resource indicators (RFC 8707) and authorization requests (RFC 6749 §4.1.1 with PKCE, RFC 7636).
 *
 * An authorization request is checked in the order RFC 6749 §4.1.2.1 asks: while the client or its
 * redirect URI is in doubt, the error is shown to the user (never sent to an unchecked URI); after
 * that, errors go back to the client's redirect URI with its `state`.
 */
import { isIP } from 'node:net';
import { TokenError } from '../tokens/index.ts';
import { OAuthError, type McpAuthErrorCode } from './errors.ts';
import type { RegisteredClient, Statements } from './statements.ts';

export const MCP_SCOPE = 'mcp:tools';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** RFC 7636 §4.1/4.2: 43 to 128 unreserved characters (a verifier; an S256 challenge is 43). */
const PKCE = /^[A-Za-z0-9._~-]{43,128}$/;
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** Why a redirect URI cannot be registered, or null. */
export function redirectUriProblem(raw: string): string | null {
  if (raw.length > 2000) return 'is longer than 2000 characters';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.hash !== '' || raw.includes('#')) return 'has a fragment';
  if (url.username !== '' || url.password !== '') return 'carries credentials';
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:') return LOOPBACK.has(url.hostname) || isIP(url.hostname) === 4 && url.hostname.startsWith('127.') ? null : 'uses http on a host that is not a loopback address';
  // A native app's private-use scheme (RFC 8252 §7.1): reverse domain name, so it has a dot.
  if (/^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(url.protocol) && !/^(javascript|data|vbscript|file|blob|about):$/.test(url.protocol)) return null;
  return `uses the scheme ${url.protocol.slice(0, 20)}`;
}

/** The workspace whose MCP endpoint `resource` names exactly, under `base`; null when it names none. */
export function workspaceOfResource(base: string, resource: string): string | null {
  const prefix = `${base}/v1/mcp/`;
  if (!resource.startsWith(prefix)) return null;
  const ws = resource.slice(prefix.length);
  return UUID.test(ws) ? ws : null;
}

/** The one supported scope, when `scope` asks for nothing else (absent: it). */
export function checkScope(scope: string | undefined): string {
  const asked = (scope ?? MCP_SCOPE).split(' ').filter((s) => s.length > 0);
  if (asked.some((s) => s !== MCP_SCOPE)) throw new OAuthError('OAUTH_INVALID_SCOPE', `Only the scope ${MCP_SCOPE} exists.`);
  return MCP_SCOPE;
}

/** Reads a registered client by its id (a signed statement); a forged, altered or retired one is refused. */
export async function clientOf(statements: Statements, base: string, clientId: string | undefined, code: McpAuthErrorCode): Promise<RegisteredClient> {
  if (clientId === undefined || clientId.length === 0) throw new OAuthError(code, 'client_id is missing.');
  try {
    return await statements.readClient(base, clientId);
  } catch (err) {
    if (err instanceof TokenError) throw new OAuthError(code, 'The client_id is not one this server registered; register the client again.');
    throw err;
  }
}

export interface AuthorizationRequest {
  client: RegisteredClient;
  redirectUri: string;
  codeChallenge: string;
  resource: string;
  workspaceId: string;
  scope: string;
  state: string | undefined;
}

/** An error to send back to the client's redirect URI (RFC 6749 §4.1.2.1). */
export class RedirectableError extends Error {
  readonly redirectUri: string;
  readonly error: OAuthError;
  readonly state: string | undefined;
  constructor(redirectUri: string, error: OAuthError, state: string | undefined) {
    super(error.message);
    this.redirectUri = redirectUri;
    this.error = error;
    this.state = state;
  }

  /** The redirect URI with `error`, `error_description`, `state` and `iss` (RFC 9207). */
  location(issuer: string): string {
    return withQuery(this.redirectUri, { error: this.error.code.slice('OAUTH_'.length).toLowerCase(), error_description: this.error.message, state: this.state, iss: issuer });
  }
}

/** `uri` with `params` added to its query (undefined values left out). */
export function withQuery(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}

/**
 * Checks an authorization request's parameters. Throws OAuthError (show it to the user) while the
 * client or redirect URI is in doubt, RedirectableError after.
 */
export async function checkAuthorizationRequest(statements: Statements, base: string, q: Readonly<Record<string, string | undefined>>): Promise<AuthorizationRequest> {
  const client = await clientOf(statements, base, q.client_id, 'OAUTH_INVALID_REQUEST');
  const redirectUri = q.redirect_uri;
  if (redirectUri === undefined || !client.redirectUris.includes(redirectUri)) throw new OAuthError('OAUTH_INVALID_REQUEST', 'The redirect_uri is not one the client registered.');
  const state = q.state;
  const fail = (code: McpAuthErrorCode, message: string): never => {
    throw new RedirectableError(redirectUri, new OAuthError(code, message), state !== undefined && state.length <= 1000 ? state : undefined);
  };
  if (state !== undefined && state.length > 1000) fail('OAUTH_INVALID_REQUEST', 'state is longer than 1000 characters.');
  if (q.response_type !== 'code') fail('OAUTH_UNSUPPORTED_RESPONSE_TYPE', 'Only response_type=code is supported.');
  if (q.code_challenge === undefined || !PKCE.test(q.code_challenge)) fail('OAUTH_INVALID_REQUEST', 'PKCE is required: code_challenge (43 to 128 characters) with code_challenge_method=S256.');
  if (q.code_challenge_method !== 'S256') fail('OAUTH_INVALID_REQUEST', 'code_challenge_method must be S256 (plain is not accepted).');
  const resource = q.resource;
  const workspaceId = resource === undefined ? null : workspaceOfResource(base, resource);
  if (resource === undefined || workspaceId === null) fail('OAUTH_INVALID_TARGET', `resource must be the MCP endpoint URL ${base}/v1/mcp/<workspace id>.`);
  const scope = (() => {
    try {
      return checkScope(q.scope);
    } catch (err) {
      if (err instanceof OAuthError) return fail(err.code, err.message);
      throw err;
    }
  })();
  return { client, redirectUri, codeChallenge: q.code_challenge as string, resource: resource as string, workspaceId: workspaceId as string, scope, state };
}

/** Whether a PKCE verifier matches an S256 challenge. */
export function pkceMatches(verifier: string | undefined, challenge: string, sha256: (text: string) => string): boolean {
  return verifier !== undefined && PKCE.test(verifier) && sha256(verifier) === challenge;
}
