/**
 * Client tokens as JWTs (GW-6): EdDSA (Ed25519) under the keyring's `client-token` signing keys,
 * `typ` "gh-client+jwt", `aud` "gatehouse:gateway". Verifiable offline by anyone with the JWKS at
 * /.well-known/jwks.json (the `kid` names the key); a token carries no secret: it is a signed
 * statement of what its parent API key allows its holder, for a few minutes.
 *
 * Separation from user access tokens (AUTH-3): their own signing keys (a kid of another purpose is
 * unknown here, and the access-token verifier reads only access-token keys), their own `typ` and
 * `aud`; so neither can stand in for the other, whichever verifier gets it.
 *
 * Issuing: the private key never leaves the keyring, so the JWS is assembled here over the signer's
 * `sign`. Verifying: jose's `jwtVerify` with one algorithm, the `typ`, issuer, audience, required
 * claims and the configured clock tolerance on `exp`; the key set is read from the keyring (cached
 * for 10 s; an unknown kid refreshes it at most once a second).
 */
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import type { PublicJwk, Signer } from '../keyring/signing-keys.ts';

export const CLIENT_TOKEN_TYP = 'gh-client+jwt';
export const CLIENT_TOKEN_AUDIENCE = 'gatehouse:gateway';
/** Longest token accepted, in bytes (the bearer header allows 4096). */
export const MAX_TOKEN_BYTES = 4096;
const KEY_CACHE_MS = 10_000;
const UNKNOWN_KID_REFRESH_MS = 1000;
/** A JWS compact serialization whose header and payload are JSON objects. */
const SHAPE = /^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

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

const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

/** Whether `text` has the shape of a JWT (and so is a client token candidate, never an API key). */
export function looksLikeJwt(text: string): boolean {
  return text.length <= MAX_TOKEN_BYTES && SHAPE.test(text);
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
  const input = `${b64json({ alg: 'EdDSA', typ: CLIENT_TOKEN_TYP, kid: signer.kid })}.${b64json(payload)}`;
  return { token: `${input}.${signer.sign(Buffer.from(input, 'ascii')).toString('base64url')}`, id };
}

/** Why a token was refused: `expired` gets its own message (the client should mint another). */
export class ClientTokenError extends Error {
  override name = 'ClientTokenError';
  readonly expired: boolean;
  constructor(message: string, expired = false) {
    super(message);
    this.expired = expired;
  }
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
    throw new ClientTokenError('the token claims are malformed');
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
  const { issuer, now } = options;
  let set: { resolve: ReturnType<typeof createLocalJWKSet>; fetchedAt: number } | null = null;
  let lastFetch = -Infinity;
  let inFlight: Promise<ReturnType<typeof createLocalJWKSet>> | null = null;

  function fetchSet(): Promise<ReturnType<typeof createLocalJWKSet>> {
    if (inFlight) return inFlight;
    const startedAt = now();
    lastFetch = startedAt;
    inFlight = (async () => {
      try {
        const resolve = createLocalJWKSet((await options.keys()) as Parameters<typeof createLocalJWKSet>[0]);
        set = { resolve, fetchedAt: startedAt };
        return resolve;
      } finally {
        inFlight = null;
      }
    })();
    return inFlight;
  }

  const keyFor: Parameters<typeof jwtVerify>[1] = async (header, token) => {
    const resolve = set !== null && now() - set.fetchedAt < KEY_CACHE_MS ? set.resolve : await fetchSet();
    try {
      return await resolve(header, token);
    } catch (err) {
      // A kid published since the last fetch (a rotation): fetch again, at most once a second.
      if (!(err instanceof errors.JWKSNoMatchingKey) || now() - lastFetch < UNKNOWN_KID_REFRESH_MS) throw err;
      return (await fetchSet())(header, token);
    }
  };

  return {
    async verify(token) {
      if (!looksLikeJwt(token)) throw new ClientTokenError('not a client token');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keyFor, {
          issuer,
          audience: CLIENT_TOKEN_AUDIENCE,
          typ: CLIENT_TOKEN_TYP,
          algorithms: ['EdDSA'],
          clockTolerance: options.clockSkewSeconds,
          currentDate: new Date(now()),
          requiredClaims: ['iss', 'aud', 'iat', 'exp', 'jti'],
          maxTokenAge: options.maxTtlSeconds,
        }));
      } catch (err) {
        if (err instanceof errors.JWTExpired) throw new ClientTokenError('the token has expired', true);
        if (err instanceof errors.JOSEError) throw new ClientTokenError(`the token is not valid (${err.code})`);
        throw err;
      }
      const claims = readClaims(payload);
      if (claims.expiresAt - claims.issuedAt > options.maxTtlSeconds) throw new ClientTokenError('the token lives longer than allowed');
      return claims;
    },
  };
}
