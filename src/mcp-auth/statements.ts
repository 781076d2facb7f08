/**
 * What the MCP authorization server signs (GW-5): four kinds of statement, each a JWT under the
 * keyring's `client-token` keys with its own `typ` and audience (src/tokens/jws.ts), so none can
 * stand in for another or for a gateway client token:
 *
 *   access token   `gh-mcp+jwt`         aud = the resource (one workspace's MCP endpoint URL, RFC 8707)
 *   code           `gh-mcp-code+jwt`    aud = the token endpoint; single-use (its jti is revoked at redemption)
 *   refresh token  `gh-mcp-rt+jwt`      aud = the token endpoint; single-use, rotated at every refresh
 *   client id      `gh-mcp-client+jwt`  aud = the registration endpoint; what the client registered
 *
 * A grant (the user's consent, or a client authenticating with an API key) is an API key of the
 * workspace: every token names it (`gh_key`), and revoking that key ends the grant on every node.
 * Statements carry ids and URLs only, never a secret; a code is readable by whoever sees the
 * redirect, and useless without the PKCE verifier.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Signer } from '../keyring/signing-keys.ts';
import { signJwt, TokenError, type createJwtVerifier } from '../tokens/index.ts';

export const ACCESS_TYP = 'gh-mcp+jwt';
export const CODE_TYP = 'gh-mcp-code+jwt';
export const REFRESH_TYP = 'gh-mcp-rt+jwt';
export const CLIENT_TYP = 'gh-mcp-client+jwt';

export const TOKEN_PATH = '/v1/oauth/token';
export const REGISTER_PATH = '/v1/oauth/register';
export const AUTHORIZE_PATH = '/v1/oauth/authorize';
export const REVOKE_PATH = '/v1/oauth/revoke';

const id = z.string().min(1).max(200);
const grantClaims = {
  jti: id,
  iat: z.number().int(),
  exp: z.number().int(),
  gh_org: z.uuid(),
  gh_ws: z.uuid(),
  gh_key: id,
  scope: z.string().max(200),
};
const accessClaims = z.object({ ...grantClaims, gh_usr: z.uuid().optional(), gh_cid: id.optional() });
const codeClaims = z.object({ ...grantClaims, gh_usr: z.uuid(), gh_cid: id, gh_redir: z.string().max(2000), gh_cc: z.string().max(200), gh_res: z.string().max(2000) });
const refreshClaims = z.object({ ...grantClaims, gh_usr: z.uuid(), gh_cid: id, gh_res: z.string().max(2000) });
const clientClaims = z.object({ jti: id, iat: z.number().int(), gh_name: z.string().max(200), gh_redirs: z.array(z.string().max(2000)).min(1).max(10) });

export type AccessClaims = z.infer<typeof accessClaims>;
export type CodeClaims = z.infer<typeof codeClaims>;
export type RefreshClaims = z.infer<typeof refreshClaims>;
export interface RegisteredClient {
  clientId: string;
  name: string;
  redirectUris: string[];
}

/** A client id's digest: what codes and refresh tokens name (a client id is a long statement). */
export const clientDigest = (clientId: string): string => createHash('sha256').update(clientId).digest('base64url');
export const newJti = (): string => randomBytes(16).toString('base64url');

export interface StatementsDeps {
  signer: () => Promise<Signer>;
  verifier: ReturnType<typeof createJwtVerifier>;
  now: () => number;
}

function parsed<T>(schema: z.ZodType<T>, payload: unknown): T {
  const r = schema.safeParse(payload);
  if (!r.success) throw new TokenError('the token claims are malformed');
  return r.data;
}

/** Signs and reads the authorization server's statements; `base` is the public base URL (the issuer). */
export function createStatements(deps: StatementsDeps) {
  const { verifier } = deps;
  const seconds = (): number => Math.floor(deps.now() / 1000);
  const sign = async (typ: string, payload: Record<string, unknown>): Promise<string> => signJwt(await deps.signer(), typ, payload);

  return {
    seconds,
    /** An access token for `resource`, living `ttl` seconds. */
    access: (base: string, resource: string, c: Omit<AccessClaims, 'iat' | 'exp' | 'jti'>, ttl: number) => {
      const iat = seconds();
      return sign(ACCESS_TYP, { iss: base, aud: resource, sub: c.gh_usr ?? c.gh_key, jti: newJti(), iat, exp: iat + ttl, ...c });
    },
    code: (base: string, c: Omit<CodeClaims, 'iat' | 'exp' | 'jti'>, ttl: number) => {
      const iat = seconds();
      return sign(CODE_TYP, { iss: base, aud: base + TOKEN_PATH, jti: newJti(), iat, exp: iat + ttl, ...c });
    },
    /** A refresh token expiring at `exp` (seconds): the grant's absolute end, carried over every rotation. */
    refresh: (base: string, c: Omit<RefreshClaims, 'iat' | 'exp' | 'jti'>, exp: number) => sign(REFRESH_TYP, { iss: base, aud: base + TOKEN_PATH, jti: newJti(), iat: seconds(), exp, ...c }),
    client: (base: string, name: string, redirectUris: string[]) => sign(CLIENT_TYP, { iss: base, aud: base + REGISTER_PATH, jti: newJti(), iat: seconds(), gh_name: name, gh_redirs: redirectUris }),

    async readAccess(base: string, resource: string, token: string): Promise<AccessClaims> {
      return parsed(accessClaims, await verifier.verify(token, { typ: ACCESS_TYP, issuer: base, audience: resource, requiredClaims: ['iat', 'exp', 'jti'] }));
    },
    async readCode(base: string, token: string): Promise<CodeClaims> {
      return parsed(codeClaims, await verifier.verify(token, { typ: CODE_TYP, issuer: base, audience: base + TOKEN_PATH, requiredClaims: ['iat', 'exp', 'jti'] }));
    },
    async readRefresh(base: string, token: string): Promise<RefreshClaims> {
      return parsed(refreshClaims, await verifier.verify(token, { typ: REFRESH_TYP, issuer: base, audience: base + TOKEN_PATH, requiredClaims: ['iat', 'exp', 'jti'] }));
    },
    async readClient(base: string, clientId: string): Promise<RegisteredClient> {
      const c = parsed(clientClaims, await verifier.verify(clientId, { typ: CLIENT_TYP, issuer: base, audience: base + REGISTER_PATH, requiredClaims: ['iat', 'jti'] }));
      return { clientId, name: c.gh_name, redirectUris: c.gh_redirs };
    },
  };
}

export type Statements = ReturnType<typeof createStatements>;
