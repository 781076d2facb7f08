/**
 * Client tokens as JWTs (GW-6): EdDSA (Ed25519) under the keyring's `client-token` signing keys,
 * `typ` "gh-client+jwt", `aud` "gatehouse:gateway". Verifiable offline by anyone with the JWKS at
 * /.well-known/jwks.json (the `kid` names the key); a token carries no secret: it is a signed
 * statement of what its parent API key allows its holder, for a few minutes.
 *
 * Separation from user access tokens (AUTH-3): their own signing keys (a kid of another purpose is
 * unknown here, and the access-token verifier reads only access-token keys), their own `typ` and
 * `aud`; so neither can stand in for the other, whichever verifier gets it. The MCP authorization
 * server's statements share these keys but each has its own `typ` and audience (src/tokens/jws.ts).
 */
import { randomBytes } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { PublicJwk, Signer } from '../keyring/signing-keys.ts';
import { createJwtVerifier, signJwt, TokenError } from './jws.ts';

export { looksLikeJwt, MAX_TOKEN_BYTES, TokenError as ClientTokenError } from './jws.ts';

export const CLIENT_TOKEN_TYP = 'gh-client+jwt';
export const CLIENT_TOKEN_AUDIENCE = 'gatehouse:gateway';

/** What a client token states. */
export interface ClientTokenClaims {
  /** The token id (jti). */
  id: string;
  tenantId: string;
  workspaceId: string;
  /** The API key it was minted from. */
  parentKeyId: string;
  /** The member who minted it through a session, when not the key itself. */
  mintedBy: { userId: string; sessionId: string } | null;
  scopes: string[];
  models: string[] | null;
  subject: string | null;
  origins: string[] | null;
  rateLimitPerMinute: number | null;
  /** Calls per UTC month for the token's subject through its parent key (counted over that key's tokens of the subject); null: none. */
  monthlyCallLimit: number | null;
  /** Seconds. */
  issuedAt: number;
  /** Seconds. */
  expiresAt: number;
}

/**
 * Signs a client token.
 * @example const token = signClientToken(await signingKeys.current('client-token'), issuer, claims)
 */
export function signClientToken(signer: Signer, issuer: string, c: Omit<ClientTokenClaims, 'id'> & { id?: string }): { token: string; id: string } {
  const id = c.id ?? randomBytes(16).toString('base64url');
  const payload: Record<string, unknown> = {
    iss: issuer,
    aud: CLIENT_TOKEN_AUDIENCE,
    iat: c.issuedAt,
    exp: c.expiresAt,
    jti: id,
    gh_org: c.tenantId,
    gh_ws: c.workspaceId,
    gh_key: c.parentKeyId,
    scope: c.scopes.join(' '),
  };
  if (c.subject !== null) payload.sub = c.subject;
  if (c.models !== null) payload.gh_models = c.models;
  if (c.origins !== null) payload.gh_origins = c.origins;
  if (c.rateLimitPerMinute !== null) payload.gh_rpm = c.rateLimitPerMinute;
  if (c.monthlyCallLimit !== null) payload.gh_mcl = c.monthlyCallLimit;
  if (c.mintedBy !== null) {
    payload.gh_usr = c.mintedBy.userId;
    payload.sid = c.mintedBy.sessionId;
  }
  return { token: signJwt(signer, CLIENT_TOKEN_TYP, payload), id };
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const stringArray = (v: unknown): string[] | null | undefined => {
  if (v === undefined) return null;
  return Array.isArray(v) && v.every(isString) ? (v as string[]) : undefined;
};

function readClaims(p: JWTPayload): ClientTokenClaims {
  const models = stringArray(p.gh_models);
  const origins = stringArray(p.gh_origins);
  const rpm = p.gh_rpm;
  const mcl = p.gh_mcl;
  const usr = p.gh_usr;
  const sid = p.sid;
  if (
    !isString(p.jti) ||
    !isString(p.gh_org) ||
    !isString(p.gh_ws) ||
    !isString(p.gh_key) ||
    typeof p.scope !== 'string' ||
    models === undefined ||
    origins === undefined ||
    (p.sub !== undefined && !isString(p.sub)) ||
    (rpm !== undefined && !(typeof rpm === 'number' && Number.isSafeInteger(rpm) && rpm > 0)) ||
    (mcl !== undefined && !(typeof mcl === 'number' && Number.isSafeInteger(mcl) && mcl > 0 && isString(p.sub))) ||
    (usr !== undefined && !(isString(usr) && isString(sid))) ||
    typeof p.iat !== 'number' ||
    typeof p.exp !== 'number'
  ) {
    throw new TokenError('the token claims are malformed');
  }
  return {
    id: p.jti,
    tenantId: p.gh_org,
    workspaceId: p.gh_ws,
    parentKeyId: p.gh_key,
    mintedBy: isString(usr) && isString(sid) ? { userId: usr, sessionId: sid } : null,
    scopes: p.scope.split(' ').filter((s) => s.length > 0),
    models,
    subject: p.sub ?? null,
    origins,
    rateLimitPerMinute: typeof rpm === 'number' ? rpm : null,
    monthlyCallLimit: typeof mcl === 'number' ? mcl : null,
    issuedAt: p.iat,
    expiresAt: p.exp,
  };
}

export interface ClientTokenVerifierOptions {
  issuer: string;
  /** The `client-token` keys (next, current, previous). */
  keys: () => Promise<{ keys: PublicJwk[] }>;
  now: () => number;
  clockSkewSeconds: number;
  /** Longest lifetime a token may have been minted with (seconds): bounds iat..exp whatever they say. */
  maxTtlSeconds: number;
}

/**
 * Verifies client tokens offline; throws ClientTokenError for any refusal, and lets a key-store
 * failure through as it is (a 503, never a refusal).
 * @example const claims = await createClientTokenVerifier({ issuer, keys: () => signingKeys.jwks('client-token'), now, clockSkewSeconds: 5, maxTtlSeconds: 3600 }).verify(token)
 */
export function createClientTokenVerifier(options: ClientTokenVerifierOptions): { verify(token: string): Promise<ClientTokenClaims> } {
  const jwt = createJwtVerifier(options);
  return {
    async verify(token) {
      const payload: JWTPayload = await jwt.verify(token, {
        typ: CLIENT_TOKEN_TYP,
        issuer: options.issuer,
        audience: CLIENT_TOKEN_AUDIENCE,
        requiredClaims: ['iat', 'exp', 'jti'],
        maxTokenAge: options.maxTtlSeconds,
      });
      const claims = readClaims(payload);
      if (claims.expiresAt - claims.issuedAt > options.maxTtlSeconds) throw new TokenError('the token lives longer than allowed');
      return claims;
    },
  };
}
