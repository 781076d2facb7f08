/**
 * Signed statements as compact JWS (JWTs) under the keyring's signing keys: the machinery that
 * client tokens (src/tokens/jwt.ts) and the MCP authorization server's tokens, codes and client
 * ids (src/mcp-auth) share. EdDSA (Ed25519) only; every kind of statement has its own `typ`, and a
 * verifier accepts exactly one `typ`, one issuer and one audience per call, so no statement can
 * stand in for another kind, whichever verifier gets it (RFC 8725 explicit typing).
 *
 * Issuing: the private key never leaves the keyring, so the JWS is assembled here over the signer's
 * `sign`. Verifying: jose's `jwtVerify` with the configured clock tolerance; the key set is read from
 * the keyring (cached for 10 s; an unknown kid refreshes it at most once a second). A key store that
 * cannot answer propagates as it is (a 503), never a refusal.
 */
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { PublicJwk, Signer } from '../keyring/signing-keys.ts';

/** Longest token accepted, in bytes (the bearer header allows 4096). */
export const MAX_TOKEN_BYTES = 4096;
const KEY_CACHE_MS = 10_000;
const UNKNOWN_KID_REFRESH_MS = 1000;
/** A JWS compact serialization whose header and payload are JSON objects. */
const SHAPE = /^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

/** Whether `text` has the shape of a JWT (and so is a signed statement candidate, never an API key). */
export function looksLikeJwt(text: string): boolean {
  return text.length <= MAX_TOKEN_BYTES && SHAPE.test(text);
}

/** The `typ` a JWT-shaped text claims in its header (unverified: only to pick its verifier), or null. */
export function claimedTyp(text: string): string | null {
  if (!looksLikeJwt(text)) return null;
  try {
    const typ = decodeProtectedHeader(text).typ;
    return typeof typ === 'string' ? typ : null;
  } catch {
    return null;
  }
}

/**
 * Signs `payload` as a JWT of type `typ`.
 * @example const token = signJwt(await signingKeys.current('client-token'), 'gh-client+jwt', { iss, aud, exp })
 */
export function signJwt(signer: Signer, typ: string, payload: Record<string, unknown>): string {
  const input = `${b64json({ alg: 'EdDSA', typ, kid: signer.kid })}.${b64json(payload)}`;
  return `${input}.${signer.sign(Buffer.from(input, 'ascii')).toString('base64url')}`;
}

/** Why a signed statement was refused: `expired` gets its own message (the client should get another). */
export class TokenError extends Error {
  override name = 'TokenError';
  readonly expired: boolean;
  constructor(message: string, expired = false) {
    super(message);
    this.expired = expired;
  }
}

export interface JwtExpectation {
  typ: string;
  issuer: string;
  audience: string;
  /** Claims that must be present (iss, aud and typ are checked anyway). */
  requiredClaims: string[];
  /** Seconds: the statement must have been issued at most this long ago (iat required then). */
  maxTokenAge?: number;
}

export interface JwtVerifierOptions {
  /** The public keys of one signing purpose (next, current, previous). */
  keys: () => Promise<{ keys: PublicJwk[] }>;
  now: () => number;
  clockSkewSeconds: number;
}

/**
 * Verifies signed statements of one signing purpose offline; throws TokenError for any refusal.
 * @example const payload = await createJwtVerifier({ keys: () => signingKeys.jwks('client-token'), now, clockSkewSeconds: 5 }).verify(token, { typ, issuer, audience, requiredClaims: ['exp'] })
 */
export function createJwtVerifier(options: JwtVerifierOptions): { verify(token: string, expect: JwtExpectation): Promise<JWTPayload> } {
  const { now } = options;
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
    async verify(token, expect) {
      if (!looksLikeJwt(token)) throw new TokenError('not a signed token');
      try {
        const { payload } = await jwtVerify(token, keyFor, {
          issuer: expect.issuer,
          audience: expect.audience,
          typ: expect.typ,
          algorithms: ['EdDSA'],
          clockTolerance: options.clockSkewSeconds,
          currentDate: new Date(now()),
          requiredClaims: ['iss', 'aud', ...expect.requiredClaims],
          ...(expect.maxTokenAge !== undefined ? { maxTokenAge: expect.maxTokenAge } : {}),
        });
        return payload;
      } catch (err) {
        if (err instanceof errors.JWTExpired) throw new TokenError('the token has expired', true);
        if (err instanceof errors.JOSEError) throw new TokenError(`the token is not valid (${err.code})`);
        throw err;
      }
    },
  };
}
