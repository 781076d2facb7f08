/**
 * Sessions (AUTH-3): short-lived EdDSA access tokens plus opaque refresh tokens, stored as
 * hashes and rotated on every use. A refresh token presented again within a short grace window
 * (two tabs racing) gets the same successor; presented after it, the whole session is revoked.
 * Revocation is written to the database first (sessions.revoked_at; the user's status), then to
 * kv, which every node reads on every authenticated request as a cache in front of the database
 * (session-state.ts): it holds across nodes at once, and survives restarts and a kv that lost its
 * memory, for access tokens that have not expired yet.
 *
 * The parts: sessions-issue.ts (create, refresh), sessions-state-ops.ts (verify, revoke, list),
 * sessions-types.ts (shapes and shared dependencies).
 */
import type { Logger } from 'pino';
import type { IdentityAudit } from './identity-audit.ts';
import type { SigningKeys } from '../keyring/signing-keys.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import { createAccessTokenVerifier } from './access-tokens.ts';
import { createSessionStateCache } from './session-state.ts';
import { createSessionIssue } from './sessions-issue.ts';
import { createSessionStateOps } from './sessions-state-ops.ts';
import type { SessionDeps, SessionSettings, Sessions } from './sessions-types.ts';

export { hashToken } from './sessions-types.ts';
export type { IssuedTokens, SessionContext, SessionInfo, SessionSettings, Sessions, VerifiedAccess } from './sessions-types.ts';

/** How long a node may answer "live" for a session from kv before asking the database again. */
const LIVE_CACHE_MS = 10_000;

export function createSessions(options: {
  db: Db;
  kv: Kv;
  signingKeys: SigningKeys;
  settings: SessionSettings;
  logger: Logger;
  now?: () => number;
  /** Appends session events to the platform audit log. */
  audit?: IdentityAudit;
}): Sessions {
  const { db, kv, signingKeys, settings, logger } = options;
  const note: IdentityAudit = options.audit ?? (async () => undefined);
  const now = options.now ?? Date.now;
  // A revoked entry outlives every access token of the session (its lifetime plus the tolerance).
  const revocationTtlMs = (settings.accessTtlSeconds + settings.clockSkewSeconds + 120) * 1000;
  const verifier = createAccessTokenVerifier({
    issuer: settings.issuer,
    audience: settings.audience,
    // Only access-token keys: a token signed by an audit-checkpoint key is not an access token.
    keys: () => signingKeys.jwks('access-token'),
    now,
    clockSkewSeconds: settings.clockSkewSeconds,
  });
  const sessionState = createSessionStateCache({ db, kv, logger, revokedTtlMs: revocationTtlMs, liveCacheMs: LIVE_CACHE_MS });
  const deps: SessionDeps = { db, signingKeys, settings, logger, now, note, verifier, sessionState };
  return { ...createSessionIssue(deps), ...createSessionStateOps(deps) };
}
