/**
 * Gatehouse as the OAuth 2.1 authorization server of its MCP endpoints (GW-5), so stock MCP
 * clients connect as the MCP authorization spec describes: the endpoint's protected-resource
 * metadata (src/mcp) names this server; clients discover it (RFC 8414), register (RFC 7591), send
 * the member to the console's consent page (authorization code with PKCE S256) or authenticate with
 * an API key (client_credentials), and get short-lived access tokens bound to one workspace's
 * endpoint (RFC 8707), accepted through the gateway's `API_CREDENTIAL_VERIFIERS`.
 *
 * Every grant is an API key of the workspace (grants.ts), so revoking it, listing it, its rate
 * limit, allowlist and audit are those of keys. Statements are signed with the keyring's
 * `client-token` keys under their own types (statements.ts).
 */
import { AUDIT } from '../audit/index.ts';
import { API_CREDENTIAL_VERIFIERS, GATEWAY } from '../gateway/index.ts';
import { defineModule, hook, moduleRef } from '../server/module.ts';
import { TENANCY } from '../tenancy/index.ts';
import { createJwtVerifier, TOKENS } from '../tokens/index.ts';
import { TRUST, TRUST_CHECKS } from '../trust/index.ts';
import { MCP_AUTH_AUDIT_ACTIONS } from './audit-actions.ts';
import { createAccessTokenCredential } from './credential.ts';
import { MCP_AUTH_ERROR_CODES } from './errors.ts';
import { createGrants, type Grants } from './grants.ts';
import { authorizationRoutes } from './routes.ts';
import { createStatements, type Statements } from './statements.ts';
import { tokenRoutes } from './token-routes.ts';
import { mcpAuthTrustCheck } from './trust-check.ts';

export { ACCESS_TYP as MCP_ACCESS_TOKEN_TYP } from './statements.ts';

export interface McpAuth {
  statements: Statements;
  grants: Grants;
}

export const MCP_AUTH = moduleRef<McpAuth>('mcp-auth');

export const mcpAuthModule = defineModule({
  ref: MCP_AUTH,
  dependsOn: [AUDIT, GATEWAY, TENANCY, TOKENS, TRUST],
  auditActions: MCP_AUTH_AUDIT_ACTIONS,
  create: (ctx) => {
    const { signingKeys } = ctx;
    const tenancy = ctx.use(TENANCY);
    const gateway = ctx.use(GATEWAY);
    const { revocations } = ctx.use(TOKENS);
    const live = () => ctx.live.current();
    const publicUrl = () => live().server.publicUrl;
    const statements = createStatements({
      signer: () => signingKeys.current('client-token'),
      verifier: createJwtVerifier({ keys: () => signingKeys.jwks('client-token'), now: ctx.now, clockSkewSeconds: ctx.config.tokens.clockSkewSeconds }),
      now: ctx.now,
    });
    const grants = createGrants({
      statements,
      revocations,
      keys: gateway.keys,
      audit: ctx.use(AUDIT),
      authorize: (principal, permission, params) => tenancy.authority.authorize(principal, permission, params),
      orgsOf: async (userId) => (await tenancy.orgs.listMine(userId)).map((o) => o.id),
      ttl: () => {
        const { oauth } = live().mcp;
        return { access: oauth.accessTokenTtlSeconds, refresh: oauth.refreshTokenTtlSeconds, code: oauth.codeTtlSeconds, skew: live().tokens.clockSkewSeconds };
      },
    });
    const names = async (userId: string, orgId: string, wsId: string) => {
      const org = (await tenancy.orgs.listMine(userId)).find((o) => o.id === orgId);
      return { org: org?.name ?? '', workspace: (await tenancy.workspaces.get(orgId, wsId)).name };
    };
    const credential = createAccessTokenCredential({ statements, grants, revocations, publicUrl });
    return {
      api: { statements, grants },
      feature: {
        id: 'mcp-auth',
        errorCodes: MCP_AUTH_ERROR_CODES,
        routes: [...authorizationRoutes({ statements, grants, publicUrl, names }), ...tokenRoutes({ statements, grants, publicUrl, verifyKey: gateway.keys.verify })],
      },
      hooks: [hook(API_CREDENTIAL_VERIFIERS, credential), hook(TRUST_CHECKS, mcpAuthTrustCheck(statements))],
    };
  },
});
