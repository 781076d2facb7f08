/**
 * Short-lived client tokens for the AI gateway (GW-6). A backend (an API key with `tokens:mint`)
 * or a member who manages the workspace's keys mints a signed JWT for a browser, a mobile app or
 * a bot; the AI routes accept it wherever an API key is accepted, through the gateway's
 * `API_CREDENTIAL_VERIFIERS` hook point, checked offline and against its parent key's current
 * state (revocation on every node at once). See src/tokens/jwt.ts for the token, credential.ts
 * for the checks, routes.ts for minting.
 */
import { AUDIT } from '../audit/index.ts';
import { IDENTITY } from '../identity/index.ts';
import { API_CREDENTIAL_VERIFIERS, GATEWAY } from '../gateway/index.ts';
import { publicOriginOf } from '../config/schema.ts';
import { defineModule, hook, moduleRef, type JobDef } from '../server/module.ts';
import { TENANCY } from '../tenancy/index.ts';
import { createClientTokenCredential } from './credential.ts';
import { CLIENT_TOKEN_AUDIENCE, createClientTokenVerifier } from './jwt.ts';
import { createTokenRevocations, type TokenRevocations } from './revocations.ts';
import { createTokensFeature } from './routes.ts';
import { TOKENS_AUDIT_ACTIONS } from './audit-actions.ts';

export { CLIENT_TOKEN_AUDIENCE, CLIENT_TOKEN_TYP } from './jwt.ts';
export { claimedTyp, createJwtVerifier, looksLikeJwt, signJwt, TokenError, type JwtExpectation } from './jws.ts';
export { isTokenId, type TokenRevocations } from './revocations.ts';
export { MINTABLE_SCOPES } from './routes.ts';

export interface Tokens {
  /** Verifies a client token offline (signature, claims, expiry); for tests and tools. */
  verify: ReturnType<typeof createClientTokenVerifier>['verify'];
  /** Revocations of signed statements by id (jti), durable; the MCP authorization server's single-use codes and refresh tokens use them too. */
  revocations: TokenRevocations;
}

export const TOKENS = moduleRef<Tokens>('tokens');

export const tokensModule = defineModule({
  ref: TOKENS,
  dependsOn: [AUDIT, IDENTITY, GATEWAY, TENANCY],
  auditActions: TOKENS_AUDIT_ACTIONS,
  create: (ctx) => {
    const { config, signingKeys } = ctx;
    if (config.auth.audience === CLIENT_TOKEN_AUDIENCE) throw new Error(`auth.audience must not be "${CLIENT_TOKEN_AUDIENCE}", the audience of gateway client tokens`);
    const issuer = config.auth.issuer ?? publicOriginOf(config);
    const tokens = createClientTokenVerifier({
      issuer,
      keys: () => signingKeys.jwks('client-token'),
      now: ctx.now,
      clockSkewSeconds: config.tokens.clockSkewSeconds,
      maxTtlSeconds: config.tokens.maxTtlSeconds,
    });
    const tenancy = ctx.use(TENANCY);
    const sessions = ctx.use(IDENTITY).sessions;
    // A revocation is kept until the token it names has surely expired (longest lifetime + tolerance + a minute).
    const revocations = createTokenRevocations({
      db: ctx.db,
      kv: ctx.kv,
      logger: ctx.logger,
      now: ctx.now,
      keepMs: (config.tokens.maxTtlSeconds + config.tokens.clockSkewSeconds + 60) * 1000,
      liveCacheMs: 10_000,
    });
    const credential = createClientTokenCredential({
      tokens,
      authorize: (principal, permission, params) => tenancy.authority.authorize(principal, permission, params),
      sessionRevoked: (userId, sessionId) => sessions.sessionRevoked(userId, sessionId),
      tokenRevoked: (tenantId, workspaceId, tokenId) => revocations.revoked(tenantId, workspaceId, tokenId),
    });
    const feature = createTokensFeature({
      gateway: ctx.use(GATEWAY),
      audit: ctx.use(AUDIT),
      signer: () => signingKeys.current('client-token'),
      issuer,
      now: ctx.now,
      defaultTtlSeconds: config.tokens.defaultTtlSeconds,
      maxTtlSeconds: config.tokens.maxTtlSeconds,
      revocations,
    });
    const prune: JobDef = {
      name: 'tokens.prune-revocations',
      schedule: '17 * * * *',
      summary: 'Deletes revocations of client tokens that have surely expired.',
      run: async ({ signal }) => ({ pruned: await revocations.prune(signal) }),
    };
    return { api: { verify: tokens.verify, revocations }, feature, hooks: [hook(API_CREDENTIAL_VERIFIERS, credential)], jobs: [prune] };
  },
});
