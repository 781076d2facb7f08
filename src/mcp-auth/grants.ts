/**
 * Grants of the MCP authorization server (GW-5) and the tokens they yield.
 *
 * A grant is an API key of the workspace with the one scope `mcp:tools`:
 *   - the authorization code flow: a member who may manage the workspace's keys approves a client;
 *     that creates a key named after the client, whose secret nobody ever sees (audited as any key
 *     created by that member, listed and revocable with the workspace's keys);
 *   - client_credentials: the client authenticates with an API key that has `mcp:tools`.
 * Every token names its key; revoking the key refuses its tokens at once on every node (the key
 * cache's eviction), and a code-flow token also ends when its member loses the right to manage keys.
 *
 * Codes and refresh tokens are single-use through the durable revocations of src/tokens (the
 * database decides, so two nodes redeeming one code at once give exactly one token): a second
 * presentation is treated as theft and revokes the grant (RFC 9700 §4.14.2).
 */
import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/index.ts';
import type { Principal } from '../server/route.ts';
import { AppError } from '../server/errors.ts';
import { TokenError, type TokenRevocations } from '../tokens/index.ts';
import { OAuthError } from './errors.ts';
import { checkScope, MCP_SCOPE, pkceMatches, workspaceOfResource, type AuthorizationRequest } from './requests.ts';
import { clientDigest, type CodeClaims, type RefreshClaims, type Statements } from './statements.ts';

export const CONSENT_PERMISSION = 'apikeys.manage';
const sha256 = (text: string): string => createHash('sha256').update(text).digest('base64url');

export interface GrantKeys {
  create(orgId: string, wsId: string, actorId: string, input: { name: string; scopes: ['mcp:tools']; expiresAt: null; monthlyLimit: null; rateLimitPerMinute: null }): Promise<{ apiKey: { id: string } }>;
  revoke(orgId: string, wsId: string, keyId: string): Promise<void>;
  active(keyId: string): Promise<{ id: string; tenantId: string; workspaceId: string; scopes: readonly string[] } | null>;
}

export interface GrantsDeps {
  statements: Statements;
  revocations: TokenRevocations;
  keys: GrantKeys;
  audit: AuditLog;
  /** Tenancy's authorizer: throws NOT_FOUND / FORBIDDEN. */
  authorize: (principal: Principal, permission: string, params: Readonly<Record<string, string | undefined>>) => Promise<unknown>;
  /** The orgs the user is a member of. */
  orgsOf: (userId: string) => Promise<string[]>;
  ttl: () => { access: number; refresh: number; code: number; skew: number };
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  refresh_token?: string;
}

interface Grant {
  gh_org: string;
  gh_ws: string;
  gh_key: string;
  /** The member who approved the client (code flow); none for client_credentials. */
  gh_usr?: string | undefined;
  gh_cid: string;
  gh_res: string;
}

/** A code or refresh token read, or invalid_grant. */
async function read<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof TokenError) throw new OAuthError('OAUTH_INVALID_GRANT', err.expired ? `The ${what} has expired.` : `The ${what} is not valid.`);
    throw err;
  }
}

/** Revokes a grant's key (on every node at once) and records why. */
async function endGrant(deps: Pick<GrantsDeps, 'keys' | 'audit'>, g: Pick<Grant, 'gh_org' | 'gh_ws' | 'gh_key'>, reason: string): Promise<void> {
  await deps.keys.revoke(g.gh_org, g.gh_ws, g.gh_key).catch((err: unknown) => {
    if (!(err instanceof AppError && err.code === 'NOT_FOUND')) throw err;
  });
  await deps.audit.record({ tenantId: g.gh_org, action: 'mcp.oauth.grant_revoked', target: { type: 'apikey', id: g.gh_key }, data: { workspace: g.gh_ws, reason } });
}

export function createGrants(deps: GrantsDeps) {
  const { statements, revocations, keys, audit } = deps;

  /** The org of `ws` where `user` may approve clients; NOT_FOUND when none (not a member, or no such workspace). */
  async function orgFor(user: Principal, ws: string): Promise<string> {
    let forbidden = false;
    for (const org of await deps.orgsOf(user.id)) {
      try {
        await deps.authorize(user, CONSENT_PERMISSION, { org, ws });
        return org;
      } catch (err) {
        if (!(err instanceof AppError) || (err.code !== 'NOT_FOUND' && err.code !== 'FORBIDDEN')) throw err;
        if (err.code === 'FORBIDDEN') forbidden = true;
      }
    }
    throw new AppError(forbidden ? 'FORBIDDEN' : 'NOT_FOUND', forbidden ? 'Approving an MCP client needs the right to manage the workspace\'s API keys.' : undefined);
  }

  /** Whether the member behind a grant still may hold it. */
  async function memberStillAllowed(g: Pick<Grant, 'gh_org' | 'gh_ws' | 'gh_usr'>): Promise<boolean> {
    if (g.gh_usr === undefined) return true;
    try {
      await deps.authorize({ kind: 'user', id: g.gh_usr }, CONSENT_PERMISSION, { org: g.gh_org, ws: g.gh_ws });
      return true;
    } catch (err) {
      if (err instanceof AppError && (err.code === 'NOT_FOUND' || err.code === 'FORBIDDEN')) return false;
      // The org asks members for a second factor at sign-in: the consent was given from such a
      // session (tenancy checked it then); the grant has no session of its own to check again.
      if (err instanceof AppError && err.code === 'MFA_REQUIRED_BY_ORG') return true;
      throw err;
    }
  }

  /** Ends a grant whose code or refresh token was presented twice. */
  async function revokeStolen(g: Grant, what: 'code' | 'refresh_token'): Promise<never> {
    await endGrant(deps, g, `${what} reused`);
    throw new OAuthError('OAUTH_INVALID_GRANT', `This ${what === 'code' ? 'code' : 'refresh token'} was used already; the grant is revoked.`);
  }

  /** Access and refresh tokens for a live grant. */
  /** `refreshExp`: when the grant's refresh tokens end (seconds): set at consent, never moved by a refresh. */
  async function issue(base: string, g: Grant, refreshExp?: number): Promise<TokenResponse> {
    const t = deps.ttl();
    if ((await keys.active(g.gh_key)) === null || !(await memberStillAllowed(g))) throw new OAuthError('OAUTH_INVALID_GRANT', 'The grant was revoked; authorize the client again.');
    const claims = { gh_org: g.gh_org, gh_ws: g.gh_ws, gh_key: g.gh_key, scope: MCP_SCOPE, gh_usr: g.gh_usr, gh_cid: g.gh_cid };
    const access = await statements.access(base, g.gh_res, claims, t.access);
    const refresh = g.gh_usr === undefined ? undefined : await statements.refresh(base, { ...claims, gh_usr: g.gh_usr, gh_res: g.gh_res }, refreshExp ?? statements.seconds() + t.refresh);
    return { access_token: access, token_type: 'Bearer', expires_in: t.access, scope: MCP_SCOPE, ...(refresh !== undefined ? { refresh_token: refresh } : {}) };
  }

  /** Marks a single-use statement used; false when it was used before (on any node). */
  async function spend(c: CodeClaims | RefreshClaims, by: string): Promise<boolean> {
    return revocations.revoke({ tenantId: c.gh_org, workspaceId: c.gh_ws, tokenId: c.jti, by, keepUntil: (c.exp + deps.ttl().skew + 60) * 1000 });
  }

  return {
    orgFor,
    memberStillAllowed,

    /** The member approves the client: a grant key, then a code for the client's redirect URI. */
    async approve(base: string, user: Principal, req: AuthorizationRequest): Promise<string> {
      const org = await orgFor(user, req.workspaceId);
      const name = `MCP client: ${req.client.name}`.slice(0, 100);
      const { apiKey } = await keys.create(org, req.workspaceId, user.id, { name, scopes: [MCP_SCOPE], expiresAt: null, monthlyLimit: null, rateLimitPerMinute: null });
      await audit.record({
        tenantId: org,
        action: 'mcp.oauth.granted',
        target: { type: 'apikey', id: apiKey.id },
        data: { workspace: req.workspaceId, client: req.client.name, redirectHost: new URL(req.redirectUri).host },
      });
      return statements.code(
        base,
        { gh_org: org, gh_ws: req.workspaceId, gh_key: apiKey.id, gh_usr: user.id, gh_cid: clientDigest(req.client.clientId), gh_redir: req.redirectUri, gh_cc: req.codeChallenge, gh_res: req.resource, scope: req.scope },
        deps.ttl().code,
      );
    },

    /** grant_type=authorization_code for a public client. */
    async redeemCode(base: string, f: Readonly<Record<string, string | undefined>>, clientId: string): Promise<TokenResponse> {
      const c = await read(() => statements.readCode(base, f.code ?? ''), 'code');
      if (c.gh_cid !== clientDigest(clientId)) throw new OAuthError('OAUTH_INVALID_GRANT', 'The code was issued to another client.');
      if (f.redirect_uri !== c.gh_redir) throw new OAuthError('OAUTH_INVALID_GRANT', 'redirect_uri differs from the authorization request\'s.');
      if (!pkceMatches(f.code_verifier, c.gh_cc, sha256)) throw new OAuthError('OAUTH_INVALID_GRANT', 'The PKCE code_verifier does not match the code_challenge.');
      if (f.resource !== undefined && f.resource !== c.gh_res) throw new OAuthError('OAUTH_INVALID_TARGET', 'resource differs from the authorization request\'s.');
      if (!(await spend(c, 'oauth:code'))) return revokeStolen(c, 'code');
      return issue(base, c);
    },

    /** grant_type=refresh_token: a new access token and a new refresh token; the old one is spent. */
    async refresh(base: string, f: Readonly<Record<string, string | undefined>>, clientId: string): Promise<TokenResponse> {
      const r = await read(() => statements.readRefresh(base, f.refresh_token ?? ''), 'refresh token');
      if (r.gh_cid !== clientDigest(clientId)) throw new OAuthError('OAUTH_INVALID_GRANT', 'The refresh token was issued to another client.');
      if (f.resource !== undefined && f.resource !== r.gh_res) throw new OAuthError('OAUTH_INVALID_TARGET', 'resource differs from the grant\'s.');
      checkScope(f.scope);
      if (!(await spend(r, 'oauth:refresh'))) return revokeStolen(r, 'refresh_token');
      return issue(base, r, r.exp);
    },

    /** grant_type=client_credentials with an API key that has `mcp:tools`, for its own workspace's endpoint. */
    async clientCredentials(base: string, f: Readonly<Record<string, string | undefined>>, key: { id: string; tenantId: string; workspaceId: string; scopes: readonly string[] }): Promise<TokenResponse> {
      if (!key.scopes.includes(MCP_SCOPE)) throw new OAuthError('OAUTH_UNAUTHORIZED_CLIENT', `The API key lacks the scope ${MCP_SCOPE}.`);
      checkScope(f.scope);
      const resource = f.resource;
      if (resource === undefined) throw new OAuthError('OAUTH_INVALID_TARGET', `resource is required: the MCP endpoint URL ${base}/v1/mcp/<workspace id>.`);
      if (workspaceOfResource(base, resource) !== key.workspaceId) throw new OAuthError('OAUTH_INVALID_TARGET', 'resource is not the MCP endpoint of the API key\'s workspace.');
      return issue(base, { gh_org: key.tenantId, gh_ws: key.workspaceId, gh_key: key.id, gh_usr: undefined, gh_cid: `key:${key.id}`, gh_res: resource });
    },

    /** RFC 7009: a refresh token ends its grant, an access token is revoked by its id; anything else is ignored. */
    async revokeToken(base: string, token: string, clientId: string | undefined): Promise<void> {
      const asRefresh = await statements.readRefresh(base, token).catch((err: unknown) => (err instanceof TokenError ? null : Promise.reject(err)));
      if (asRefresh !== null) {
        if (clientId === undefined || asRefresh.gh_cid !== clientDigest(clientId)) throw new OAuthError('OAUTH_INVALID_CLIENT', 'The token was issued to another client.');
        await endGrant(deps, asRefresh, 'revoked by the client');
      }
    },
  };
}

export type Grants = ReturnType<typeof createGrants>;
