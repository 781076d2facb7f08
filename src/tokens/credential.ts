/**
 * The gateway's view of a client token (GW-6): the `API_CREDENTIAL_VERIFIERS` entry. It checks
 * what the token alone can tell (signature, typ, audience, issuer, expiry with the configured
 * tolerance, the browser origin) and, for a token a member minted through a session, that the
 * session is not revoked (logout, logout-all, a disabled user, a password reset: identity's session
 * state, kv then database) and that the member still may manage the workspace's keys (tenancy's
 * authority cache, evicted on every node when a membership changes: removing the member, or
 * deleting the account, kills the token), and that the token itself was not revoked by its id
 * (src/tokens/revocations.ts). The
 * gateway then checks the parent API key through its own cache (src/gateway/credentials.ts).
 *
 * A JWT-shaped credential whose header names another `typ` is passed on to the next verifier (the
 * MCP authorization server's access tokens); one that names no verifier's `typ` is refused by the
 * gateway (401).
 *
 * Refusals: a token past its exp (+ tolerance) is 401 with its own message; any other token
 * problem 401; an Origin the token does not list 403 ORIGIN_NOT_ALLOWED. A key store or database
 * that cannot answer propagates (503), never a refusal.
 */
import type { FastifyRequest } from 'fastify';
import { GatewayError, type ApiCredentialVerifier, type DelegatedCredential } from '../gateway/index.ts';
import { AppError } from '../server/errors.ts';
import type { Principal } from '../server/route.ts';
import { claimedTyp } from './jws.ts';
import { CLIENT_TOKEN_TYP, ClientTokenError, type createClientTokenVerifier } from './jwt.ts';

export interface ClientTokenCredentialDeps {
  tokens: ReturnType<typeof createClientTokenVerifier>;
  /** Tenancy's authorizer: throws NOT_FOUND / FORBIDDEN when the member may no longer manage keys. */
  authorize: (principal: Principal, permission: string, params: Readonly<Record<string, string | undefined>>) => Promise<unknown>;
  /** Identity's session state: a member-minted token ends with the session it was minted in. */
  sessionRevoked: (userId: string, sessionId: string) => Promise<boolean>;
  /** This token revoked by its id (src/tokens/revocations.ts): kv, then the database. */
  tokenRevoked: (tenantId: string, workspaceId: string, tokenId: string) => Promise<boolean>;
}

/** The permission a member needs to mint a token, and keeps needing for the token to work. */
export const MINT_PERMISSION = 'apikeys.manage';

export function createClientTokenCredential(deps: ClientTokenCredentialDeps): ApiCredentialVerifier {
  return {
    async verify(presented: string, request: FastifyRequest): Promise<DelegatedCredential | null | undefined> {
      // Another kind of signed statement (an MCP access token) is for its own verifier.
      if (claimedTyp(presented) !== CLIENT_TOKEN_TYP) return undefined;
      let claims;
      try {
        claims = await deps.tokens.verify(presented);
      } catch (err) {
        if (!(err instanceof ClientTokenError)) throw err;
        throw new AppError('UNAUTHENTICATED', err.expired ? 'The client token has expired; mint a new one.' : 'The client token is not valid.');
      }
      // A browser says where the page came from; a token is used only from the origins it names
      // (a token minted without origins is not for browsers).
      const origin = request.headers.origin;
      if (origin !== undefined && !(claims.origins ?? []).includes(origin)) throw new GatewayError('ORIGIN_NOT_ALLOWED');
      // Revoked by its id (on every node at once; the database decides when kv does not know).
      if (await deps.tokenRevoked(claims.tenantId, claims.workspaceId, claims.id)) return null;
      if (claims.mintedBy !== null) {
        const member: Principal = { kind: 'user', id: claims.mintedBy.userId, sessionId: claims.mintedBy.sessionId };
        if (await deps.sessionRevoked(member.id, claims.mintedBy.sessionId)) return null;
        try {
          await deps.authorize(member, MINT_PERMISSION, { org: claims.tenantId, ws: claims.workspaceId });
        } catch (err) {
          if (err instanceof AppError && (err.code === 'NOT_FOUND' || err.code === 'FORBIDDEN')) return null;
          throw err;
        }
      }
      return {
        parentKeyId: claims.parentKeyId,
        tenantId: claims.tenantId,
        workspaceId: claims.workspaceId,
        scopes: claims.scopes,
        models: claims.models,
        subject: claims.subject,
        credentialId: claims.id,
        rateLimitPerMinute: claims.rateLimitPerMinute,
        monthlyCallLimit: claims.monthlyCallLimit,
      };
    },
  };
}
