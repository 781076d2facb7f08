/**
 * Access tokens (AUTH-3): short-lived JWTs (RFC 7519) in the JWT profile for OAuth 2.0 access
 * tokens (RFC 9068: `typ` "at+jwt"), signed with the keyring's Ed25519 access-token key (EdDSA,
 * RFC 8037).
 *
 * Issuing: the private key never leaves the keyring, so the token is assembled here:
 * base64url(header) "." base64url(payload), signed with the keyring's `signer.sign`. The header
 * is exactly { alg: 'EdDSA', typ: 'at+jwt', kid }.
 *
 * Verifying: one algorithm, one key source, checks in a fixed order, each refusal a TokenError
 * with its own `problem`:
 *   1. size, shape (three canonical base64url segments), header and payload JSON objects -> MALFORMED
 *   2. alg exactly 'EdDSA' -> ALG_NOT_ALLOWED; typ exactly 'at+jwt', no crit/jku/jwk/x5u/x5c -> MALFORMED
 *      (keys named or embedded in a token are never fetched or trusted)
 *   3. kid a published key -> KID_UNKNOWN
 *   4. Ed25519 signature under that key -> SIGNATURE_INVALID
 *   5. iss, aud, sub, sid, jti, iat, exp (and nbf) -> CLAIMS_INVALID; then EXPIRED / NOT_YET_VALID
 *
 * Key set: `keys()` (the JWKS) is cached for keyCacheMs. A kid missing from the cache triggers
 * one refresh, at most once per second whatever the number of tokens carrying unknown kids (so
 * random kids cannot turn into a load on the key store); concurrent refreshes share one call.
 * An error from `keys()` is not a token problem and propagates as is (a 5xx, not a 401); the
 * attempt still counts against the rate limit and a failed fetch is never cached.
 *
 * Revocation is not checked here: the session layer checks `sid`/`jti` after `verify`.
 */
import { randomBytes } from 'node:crypto';
import { verifyEd25519 } from '../crypto/signing.ts';

export interface AccessClaims {
  sub: string;
  sid: string;
  iat: number;
  exp: number;
  jti: string;
  iss: string;
  aud: string;
  nbf?: number;
}

export interface IssueOptions {
  issuer: string;
  audience: string;
  ttlSeconds: number;
  now?: () => number;
}

export type TokenProblem =
  | 'TOKEN_MALFORMED'
  | 'TOKEN_ALG_NOT_ALLOWED'
  | 'TOKEN_KID_UNKNOWN'
  | 'TOKEN_SIGNATURE_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_NOT_YET_VALID'
  | 'TOKEN_CLAIMS_INVALID';

/**
 * A refused access token. Callers branch on `problem`, never on the message; messages never
 * carry the token or any part of it.
 * @example throw new TokenError('TOKEN_EXPIRED', 'the token has expired')
 */
export class TokenError extends Error {
  override name = 'TokenError';
  readonly problem: TokenProblem;

  constructor(problem: TokenProblem, message: string) {
    super(message);
    this.problem = problem;
  }
}

export interface VerifierOptions {
  issuer: string;
  audience: string;
  keys: () => Promise<{ keys: Array<{ kid: string; x: string; kty: string; crv: string }> }>;
  now?: () => number;
  /** Tolerance on exp, nbf and iat, in seconds (default 5; `auth.accessTokenClockSkewSeconds`). */
  clockSkewSeconds?: number;
  /** Longest token accepted, in bytes (default 4096). */
  maxTokenBytes?: number;
  /** How long a fetched key set is used before it is fetched again (default 10 000 ms). */
  keyCacheMs?: number;
}

const ALG = 'EdDSA';
/** Nodes are NTP-synced: a few seconds cover their drift without extending a token's life much. */
const DEFAULT_CLOCK_SKEW_SECONDS = 5;
const TYP = 'at+jwt';
/** 128 bits, 22 base64url characters. */
const JTI_BYTES = 16;
/** Header parameters that name, embed or extend keys or processing rules: never accepted. */
const FORBIDDEN_HEADERS = ['crit', 'jku', 'jwk', 'x5u', 'x5c'] as const;
/** An unknown kid refreshes the key set at most this often. */
const UNKNOWN_KID_REFRESH_MS = 1000;
const B64URL_RE = /^[A-Za-z0-9_-]*$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/**
 * Issues a signed access token for `subject` with a fresh random `jti`.
 * @example const { token } = await issueAccessToken(await signingKeys.current('access-token'), { sub, sid }, { issuer, audience, ttlSeconds: 300 })
 */
export async function issueAccessToken(
  signer: { kid: string; sign(data: Buffer): Buffer },
  subject: { sub: string; sid: string },
  options: IssueOptions,
): Promise<{ token: string; claims: AccessClaims }> {
  if (!nonEmptyString(signer.kid)) throw new TypeError('issueAccessToken: signer.kid must be a non-empty string');
  if (!nonEmptyString(subject.sub) || !nonEmptyString(subject.sid)) throw new TypeError('issueAccessToken: sub and sid must be non-empty strings');
  if (!nonEmptyString(options.issuer) || !nonEmptyString(options.audience)) throw new TypeError('issueAccessToken: issuer and audience must be non-empty strings');
  if (!Number.isSafeInteger(options.ttlSeconds) || options.ttlSeconds <= 0) throw new RangeError('issueAccessToken: ttlSeconds must be a positive integer');
  const nowMs = (options.now ?? Date.now)();
  if (!Number.isFinite(nowMs)) throw new RangeError('issueAccessToken: now() must return milliseconds');
  const iat = Math.floor(nowMs / 1000);
  const claims: AccessClaims = {
    iss: options.issuer,
    sub: subject.sub,
    aud: options.audience,
    iat,
    exp: iat + options.ttlSeconds,
    jti: randomBytes(JTI_BYTES).toString('base64url'),
    sid: subject.sid,
  };
  const signingInput = `${b64json({ alg: ALG, typ: TYP, kid: signer.kid })}.${b64json(claims)}`;
  const signature = signer.sign(Buffer.from(signingInput, 'ascii'));
  return { token: `${signingInput}.${Buffer.from(signature).toString('base64url')}`, claims };
}

/** Decodes a base64url segment, refusing any text that is not the canonical encoding of its bytes. */
function decodeSegment(segment: string): Buffer | null {
  if (!B64URL_RE.test(segment) || segment.length % 4 === 1) return null;
  const bytes = Buffer.from(segment, 'base64url');
  // Spare low bits set in the last character would give one signature many spellings.
  return bytes.toString('base64url') === segment ? bytes : null;
}

function decodeJsonObject(segment: string): Record<string, unknown> | null {
  const bytes = decodeSegment(segment);
  if (bytes === null || bytes.length === 0) return null;
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(bytes));
  } catch {
    return null;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

type PublishedKey = { kty: 'OKP'; crv: 'Ed25519'; x: string };

/** The usable Ed25519 keys of a key set by kid; malformed entries and ambiguous kids are left out. */
function indexKeys(set: Awaited<ReturnType<VerifierOptions['keys']>>): Map<string, PublishedKey> {
  const byKid = new Map<string, PublishedKey>();
  const ambiguous = new Set<string>();
  for (const jwk of Array.isArray(set?.keys) ? set.keys : []) {
    if (typeof jwk !== 'object' || jwk === null || !nonEmptyString(jwk.kid)) continue;
    try {
      // Validates kty, crv, x (and alg/use when present) without verifying anything.
      verifyEd25519({ ...jwk } as Parameters<typeof verifyEd25519>[0], Buffer.alloc(0), Buffer.alloc(0));
    } catch {
      continue;
    }
    const known = byKid.get(jwk.kid);
    if (known !== undefined && known.x !== jwk.x) ambiguous.add(jwk.kid);
    byKid.set(jwk.kid, { kty: 'OKP', crv: 'Ed25519', x: jwk.x });
  }
  for (const kid of ambiguous) byKid.delete(kid);
  return byKid;
}

/**
 * A verifier of access tokens issued by `issueAccessToken` under a published key.
 * @example const claims = await createAccessTokenVerifier({ issuer, audience, keys: () => signingKeys.jwks() }).verify(bearer)
 */
const VERIFIED_CACHE_MAX = 10_000;

export function createAccessTokenVerifier(options: VerifierOptions): { verify(token: string): Promise<AccessClaims> } {
  const { issuer, audience } = options;
  const now = options.now ?? Date.now;
  const skew = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  const maxTokenBytes = options.maxTokenBytes ?? 4096;
  const keyCacheMs = options.keyCacheMs ?? 10_000;
  if (!nonEmptyString(issuer) || !nonEmptyString(audience)) throw new TypeError('createAccessTokenVerifier: issuer and audience must be non-empty strings');
  if (typeof options.keys !== 'function') throw new TypeError('createAccessTokenVerifier: keys must be a function');
  if (!Number.isFinite(skew) || skew < 0) throw new RangeError('createAccessTokenVerifier: clockSkewSeconds must be >= 0');
  if (!Number.isSafeInteger(maxTokenBytes) || maxTokenBytes <= 0) throw new RangeError('createAccessTokenVerifier: maxTokenBytes must be a positive integer');
  if (!Number.isFinite(keyCacheMs) || keyCacheMs < 0) throw new RangeError('createAccessTokenVerifier: keyCacheMs must be >= 0');

  let cache: { byKid: Map<string, PublishedKey>; fetchedAt: number } | null = null;
  // Token -> the key object its signature was verified with (bounded, oldest evicted first).
  const verifiedSignatures = new Map<string, PublishedKey>();
  let inFlight: Promise<Map<string, PublishedKey>> | null = null;
  let lastFetchStartedAt = -Infinity;

  function fetchKeys(): Promise<Map<string, PublishedKey>> {
    if (inFlight !== null) return inFlight;
    const startedAt = now();
    lastFetchStartedAt = startedAt;
    inFlight = (async () => {
      try {
        const byKid = indexKeys(await options.keys());
        cache = { byKid, fetchedAt: startedAt };
        return byKid;
      } finally {
        inFlight = null;
      }
    })();
    return inFlight;
  }

  async function keyFor(kid: string): Promise<PublishedKey | undefined> {
    const fresh = cache !== null && now() - cache.fetchedAt < keyCacheMs ? cache.byKid : await fetchKeys();
    const key = fresh.get(kid);
    if (key !== undefined) return key;
    if (inFlight === null && now() - lastFetchStartedAt < UNKNOWN_KID_REFRESH_MS) return undefined;
    return (await fetchKeys()).get(kid);
  }

  async function verify(token: string): Promise<AccessClaims> {
    // 1. Shape.
    if (typeof token !== 'string') throw new TokenError('TOKEN_MALFORMED', 'the token is not a string');
    if (token.length > maxTokenBytes || Buffer.byteLength(token, 'utf8') > maxTokenBytes) {
      throw new TokenError('TOKEN_MALFORMED', `the token is longer than ${maxTokenBytes} bytes`);
    }
    const parts = token.split('.');
    if (parts.length !== 3) throw new TokenError('TOKEN_MALFORMED', 'the token is not three dot-separated segments');
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    const header = decodeJsonObject(headerPart);
    if (header === null) throw new TokenError('TOKEN_MALFORMED', 'the token header is not a base64url JSON object');
    const payload = decodeJsonObject(payloadPart);
    if (payload === null) throw new TokenError('TOKEN_MALFORMED', 'the token payload is not a base64url JSON object');
    // An empty signature is well-formed here (alg "none" is refused below, by its alg).
    const signature = decodeSegment(signaturePart);
    if (signature === null) throw new TokenError('TOKEN_MALFORMED', 'the token signature is not canonical base64url');

    // 2. Header.
    if (header.alg !== ALG) throw new TokenError('TOKEN_ALG_NOT_ALLOWED', `the token algorithm is not ${ALG}`);
    if (header.typ !== TYP) throw new TokenError('TOKEN_MALFORMED', `the token type is not ${TYP}`);
    for (const name of FORBIDDEN_HEADERS) {
      if (Object.hasOwn(header, name)) throw new TokenError('TOKEN_MALFORMED', `the token header carries "${name}"`);
    }

    // 3. Key.
    const kid = header.kid;
    if (!nonEmptyString(kid)) throw new TokenError('TOKEN_KID_UNKNOWN', 'the token header has no kid');
    const key = await keyFor(kid);
    if (key === undefined) throw new TokenError('TOKEN_KID_UNKNOWN', 'the token kid is not a published key');

    // 4. Signature over the exact bytes received. A token whose signature this verifier already
    // checked against this same published key is not checked again (every other step still runs,
    // and the kid must still be published): an access token is typically presented many times.
    if (verifiedSignatures.get(token) !== key) {
      if (!verifyEd25519(key, Buffer.from(`${headerPart}.${payloadPart}`, 'ascii'), signature)) {
        throw new TokenError('TOKEN_SIGNATURE_INVALID', 'the token signature does not verify');
      }
      verifiedSignatures.set(token, key);
      if (verifiedSignatures.size > VERIFIED_CACHE_MAX) {
        const oldest = verifiedSignatures.keys().next().value;
        if (oldest !== undefined) verifiedSignatures.delete(oldest);
      }
    }

    // 5. Claims.
    const { iss, aud, sub, sid, jti, iat, exp, nbf } = payload;
    const hasNbf = Object.hasOwn(payload, 'nbf');
    if (iss !== issuer) throw new TokenError('TOKEN_CLAIMS_INVALID', 'the token issuer is not accepted');
    if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) {
      throw new TokenError('TOKEN_CLAIMS_INVALID', 'the token audience is not accepted');
    }
    if (!nonEmptyString(sub) || !nonEmptyString(sid) || !nonEmptyString(jti)) {
      throw new TokenError('TOKEN_CLAIMS_INVALID', 'the token sub, sid and jti must be non-empty strings');
    }
    if (typeof iat !== 'number' || !Number.isFinite(iat) || typeof exp !== 'number' || !Number.isFinite(exp)) {
      throw new TokenError('TOKEN_CLAIMS_INVALID', 'the token iat and exp must be numbers');
    }
    if (hasNbf && (typeof nbf !== 'number' || !Number.isFinite(nbf))) throw new TokenError('TOKEN_CLAIMS_INVALID', 'the token nbf must be a number');
    const nowS = now() / 1000;
    if (nowS > exp + skew) throw new TokenError('TOKEN_EXPIRED', 'the token has expired');
    if ((hasNbf && (nbf as number) > nowS + skew) || iat > nowS + skew) throw new TokenError('TOKEN_NOT_YET_VALID', 'the token is not valid yet');

    const claims: AccessClaims = { sub, sid, iat, exp, jti, iss: issuer, aud: audience };
    if (hasNbf) claims.nbf = nbf as number;
    return claims;
  }

  return { verify };
}
