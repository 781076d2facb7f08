/**
 * Errors of the MCP authorization server (GW-5), in the shape of src/server/error-codes.ts, and
 * the OAuth error format its token, registration and authorization endpoints answer with
 * (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 8707 §2): `{ "error": "<oauth code>", "error_description" }`.
 * Gatehouse's own code (and the request id) stay in `gatehouse_code` / `request_id` for support.
 */
import { z } from 'zod';
import type { ErrorCodeInfo } from '../server/error-codes.ts';
import { AppError, registerErrorCodes } from '../server/errors.ts';
import type { ErrorFormat } from '../server/route.ts';

export const MCP_AUTH_ERROR_CODES = {
  OAUTH_INVALID_REQUEST: { status: 400, message: 'The OAuth request is malformed.', doc: 'A parameter is missing, repeated, malformed or unsupported (for example no PKCE code_challenge, or a code_challenge_method other than S256). OAuth error `invalid_request`.' },
  OAUTH_INVALID_CLIENT: {
    status: 401,
    message: 'The client could not be authenticated.',
    doc: 'The client_id is not one this server registered (or was signed by a signing key retired since: register again), the redirect_uri is not one it registered, or for client_credentials the API key is wrong, revoked, expired or not the client_id\'s. OAuth error `invalid_client`.',
  },
  OAUTH_INVALID_GRANT: {
    status: 400,
    message: 'The authorization grant is invalid, expired or revoked.',
    doc: 'The code or refresh token is expired, already used, issued to another client or redirect URI, its PKCE code_verifier does not match, or the grant behind it (its API key, or the user\'s right to manage the workspace\'s keys) is gone. A code or refresh token presented a second time revokes the whole grant. OAuth error `invalid_grant`.',
  },
  OAUTH_UNAUTHORIZED_CLIENT: { status: 400, message: 'The client may not use this grant.', doc: 'The API key used for client_credentials lacks the scope `mcp:tools`. OAuth error `unauthorized_client`.' },
  OAUTH_UNSUPPORTED_GRANT_TYPE: { status: 400, message: 'The grant type is not supported.', doc: 'Supported: authorization_code (with PKCE S256), refresh_token and client_credentials. OAuth error `unsupported_grant_type`.' },
  OAUTH_UNSUPPORTED_RESPONSE_TYPE: { status: 400, message: 'The response type is not supported.', doc: 'Only `code` (the authorization code flow with PKCE). OAuth error `unsupported_response_type`.' },
  OAUTH_INVALID_SCOPE: { status: 400, message: 'The requested scope is not supported.', doc: 'The only scope is `mcp:tools`. OAuth error `invalid_scope`.' },
  OAUTH_INVALID_TARGET: {
    status: 400,
    message: 'The resource is not an MCP endpoint of this server.',
    doc: 'The `resource` (RFC 8707) must be exactly the URL of one workspace\'s MCP endpoint, `<public URL>/v1/mcp/<workspace id>`, as its protected-resource metadata names it; for client_credentials, the API key\'s own workspace. OAuth error `invalid_target`.',
  },
  OAUTH_INVALID_REDIRECT_URI: {
    status: 400,
    message: 'A redirect URI is not allowed.',
    doc: 'Registration takes 1 to 5 redirect URIs, each https, http on a loopback address (127.0.0.1, [::1], localhost), or a private-use scheme with a dot (com.example.app:/callback), without a fragment or credentials. OAuth error `invalid_redirect_uri`.',
  },
  OAUTH_INVALID_CLIENT_METADATA: { status: 400, message: 'The client metadata is not acceptable.', doc: 'Only public clients register (`token_endpoint_auth_method` `none`) for the authorization_code and refresh_token grants. OAuth error `invalid_client_metadata`.' },
} satisfies Record<string, ErrorCodeInfo>;

registerErrorCodes(MCP_AUTH_ERROR_CODES);

export type McpAuthErrorCode = keyof typeof MCP_AUTH_ERROR_CODES;

/** @example throw new OAuthError('OAUTH_INVALID_GRANT') */
export class OAuthError extends AppError {
  override name = 'OAuthError';
  declare readonly code: McpAuthErrorCode;
  constructor(code: McpAuthErrorCode, message?: string, options?: { headers?: Record<string, string> }) {
    super(code, message, options);
  }
}

/** The OAuth error name of a Gatehouse code: ours by name, the rest by status. */
export function oauthErrorName(code: string, status: number): string {
  if (code.startsWith('OAUTH_')) return code.slice('OAUTH_'.length).toLowerCase();
  if (status === 401 || code === 'ORIGIN_NOT_ALLOWED') return 'invalid_client';
  if (status === 429 || status === 503) return 'temporarily_unavailable';
  if (status >= 500) return 'server_error';
  return 'invalid_request';
}

const oauthError = z.object({ error: z.string(), error_description: z.string(), gatehouse_code: z.string(), request_id: z.string() });

/** Errors as OAuth error responses; an unauthenticated client is told to use HTTP Basic. */
export const oauthErrors: ErrorFormat = {
  name: 'oauth',
  schema: oauthError,
  render: (e) => ({
    body: { error: oauthErrorName(e.code, e.status), error_description: e.message, gatehouse_code: e.code, request_id: e.requestId },
    headers: { 'cache-control': 'no-store', ...(e.status === 401 ? { 'www-authenticate': 'Basic realm="gatehouse-oauth"' } : {}) },
  }),
};
