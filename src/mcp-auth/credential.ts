/**
 * MCP access tokens at the MCP endpoint (GW-5): the `API_CREDENTIAL_VERIFIERS` entry for JWTs of
 * `typ` gh-mcp+jwt. A token is accepted only by the endpoint it names as its audience (RFC 8707):
 * the request must be for `/v1/mcp/<workspace>` and the token's `aud` exactly that endpoint's URL
 * under this server's public base; anywhere else (the AI routes, another workspace's endpoint) it is
 * refused. Then: not revoked by its id, its member (code flow) still may manage the workspace's keys;
 * the gateway checks its key (the grant) through the key cache, evicted on every node at revocation.
 *
 * Refusals: an expired token 401 with its own message, any other token problem 401, a browser
 * Origin 403 ORIGIN_NOT_ALLOWED (these tokens are not for pages). A store that cannot answer is an
 * error (503), never a refusal.
 */
import type { FastifyRequest } from 'fastify';
import { GatewayError, type ApiCredentialVerifier, type DelegatedCredential } from '../gateway/index.ts';
import { AppError } from '../server/errors.ts';
import { publicBaseOf } from '../server/public-base.ts';
import { claimedTyp, TokenError, type TokenRevocations } from '../tokens/index.ts';
import type { Grants } from './grants.ts';
import { MCP_SCOPE } from './requests.ts';
import { ACCESS_TYP, type Statements } from './statements.ts';

const ENDPOINT_PATH = /^\/v1\/mcp\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:\?|$)/;

export interface AccessCredentialDeps {
  statements: Statements;
  grants: Pick<Grants, 'memberStillAllowed'>;
  revocations: Pick<TokenRevocations, 'revoked'>;
  publicUrl: () => string | undefined;
}

export function createAccessTokenCredential(deps: AccessCredentialDeps): ApiCredentialVerifier {
  return {
    async verify(presented: string, request: FastifyRequest): Promise<DelegatedCredential | null | undefined> {
      if (claimedTyp(presented) !== ACCESS_TYP) return undefined;
      const endpoint = ENDPOINT_PATH.exec(request.url);
      if (!endpoint) throw new AppError('UNAUTHENTICATED', 'This token is for an MCP endpoint only.');
      const base = publicBaseOf(deps.publicUrl(), request);
      let claims;
      try {
        claims = await deps.statements.readAccess(base, `${base}/v1/mcp/${endpoint[1]}`, presented);
      } catch (err) {
        if (!(err instanceof TokenError)) throw err;
        throw new AppError('UNAUTHENTICATED', err.expired ? 'The access token has expired; refresh it.' : 'The access token is not valid for this MCP endpoint.');
      }
      if (request.headers.origin !== undefined) throw new GatewayError('ORIGIN_NOT_ALLOWED');
      if (claims.gh_ws !== endpoint[1]) return null;
      if (await deps.revocations.revoked(claims.gh_org, claims.gh_ws, claims.jti)) return null;
      if (!(await deps.grants.memberStillAllowed(claims))) return null;
      return {
        parentKeyId: claims.gh_key,
        tenantId: claims.gh_org,
        workspaceId: claims.gh_ws,
        scopes: claims.scope.split(' ').filter((s) => s === MCP_SCOPE),
        // No AI model: these tokens are for the MCP endpoint only.
        models: [],
        subject: claims.gh_usr !== undefined ? `user:${claims.gh_usr}` : null,
        credentialId: claims.jti,
        rateLimitPerMinute: null,
        monthlyCallLimit: null,
      };
    },
  };
}
