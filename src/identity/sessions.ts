/**
 * Sessions (AUTH-3): short-lived EdDSA access tokens plus opaque refresh tokens, stored as
 * hashes and rotated on every use. A refresh token presented again within a short grace window
 * (two tabs racing) gets the same successor; presented after it, the whole session is revoked.
 * Revocation is written to the database first (sessions.revoked_at; the user's status), then to
 * kv, which every node reads on every authenticated request as a cache in front of the database
 * (session-state.ts): it holds across nodes at once, and survives restarts and a kv that lost its
 * memory, for access tokens that have not expired yet.
 */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { IdentityAudit } from './identity-audit.ts';
import type { SigningKeys } from '../keyring/signing-keys.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import { createAccessTokenVerifier, issueAccessToken, TokenError, type AccessClaims } from './access-tokens.ts';
import { createSessionStateCache } from './session-state.ts';

export interface SessionSettings {
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
  refreshIdleSeconds: number;
  refreshAbsoluteSeconds: number;
  reuseGraceSeconds: number;
  /** Tolerance on an access token's exp, nbf and iat, in seconds. */
  clockSkewSeconds: number;
}

/** How long a node may answer "live" for a session from kv before asking the database again. */
const LIVE_CACHE_MS = 10_000;

export interface IssuedTokens {
  sessionId: string;
  accessToken: string;
  accessExpiresAt: number;
  refreshToken: string;
  refreshExpiresAt: number;
}

export interface SessionContext {
  mode: 'bearer' | 'cookie';
  ip: string;
  userAgent: string | undefined;
  deviceId?: string;
  /** The sign-in verified a second factor: recorded as the session's first step-up. */
  secondFactor?: boolean;
}

export interface SessionInfo {
  id: string;
  mode: 'bearer' | 'cookie';
  ip: string | null;
  userAgent: string | null;
  createdAt: string;
  lastUsedAt: string;
  current: boolean;
}

export interface VerifiedAccess {
  userId: string;
  sessionId: string;
  claims: AccessClaims;
}

const REFRESH_PREFIX = 'ghr_';
const REFRESH_RE = /^ghr_([A-Za-z0-9_-]{43})$/;

/** SHA-256 of a token, the only form in which tokens are stored. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

/**
 * The successor of a refresh token is derived from the token under the session's own key, so a
 * racing second use of the same token gets the same successor without any plaintext token being
 * stored, while someone holding a stolen token but not the key cannot derive its successor.
 */
function successorOf(token: string, sessionKey: string): string {
  return REFRESH_PREFIX + createHmac('sha256', Buffer.from(sessionKey, 'base64url')).update(token).digest('base64url');
}

function newRefreshToken(): string {
  return REFRESH_PREFIX + randomBytes(32).toString('base64url');
}

interface SessionRow {
  id: string;
  user_id: string;
  successor_key: string;
  revoked_at: Date | string | null;
  idle_expires_at: Date | string;
  absolute_expires_at: Date | string;
}

interface RefreshRow {
  id: string;
  session_id: string;
  used_at: Date | string | null;
}

const toMs = (v: Date | string): number => (v instanceof Date ? v.getTime() : Date.parse(v));

export interface Sessions {
  create(userId: string, ctx: SessionContext): Promise<IssuedTokens>;
  refresh(refreshToken: string): Promise<IssuedTokens>;
  /** Verifies an access token and its revocation state; null when it must not be honoured. */
  verifyAccess(token: string): Promise<VerifiedAccess | null>;
  /**
   * Whether a session is revoked (logout, logout-all, a disabled user, a password reset), from kv or,
   * when kv does not know, the database: what credentials derived from a session (client tokens) ask.
   */
  sessionRevoked(userId: string, sessionId: string): Promise<boolean>;
  revokeSession(userId: string, sessionId: string, reason: string): Promise<boolean>;
  /** Revokes every session of a user (optionally but one) and every access token issued before now. */
  revokeAllForUser(userId: string, reason: string, exceptSessionId?: string): Promise<number>;
  list(userId: string, currentSessionId?: string): Promise<SessionInfo[]>;
  markReauthenticated(sessionId: string): Promise<void>;
  /** When this (unrevoked) session last proved the password (a sign-in or a re-entry), in ms; null if never. */
  reauthenticatedAt(userId: string, sessionId: string): Promise<number | null>;
  /** Records that this session verified a second factor now (sensitive actions ask how recently). */
  markSecondFactor(userId: string, sessionId: string): Promise<void>;
  /** When this live session of the user last verified a second factor (ms), or null. */
  secondFactorAt(userId: string, sessionId: string): Promise<number | null>;
}

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

  async function issue(userId: string, sessionId: string, refreshToken: string, refreshExpiresAt: number): Promise<IssuedTokens> {
    const signer = await signingKeys.current('access-token');
    const { token, claims } = await issueAccessToken(signer, { sub: userId, sid: sessionId }, {
      issuer: settings.issuer,
      audience: settings.audience,
      ttlSeconds: settings.accessTtlSeconds,
      now,
    });
    return { sessionId, accessToken: token, accessExpiresAt: claims.exp * 1000, refreshToken, refreshExpiresAt };
  }

  async function create(userId: string, ctx: SessionContext): Promise<IssuedTokens> {
    const sessionId = randomUUID();
    const t = now();
    const idle = t + settings.refreshIdleSeconds * 1000;
    const absolute = t + settings.refreshAbsoluteSeconds * 1000;
    const refreshToken = newRefreshToken();
    // One statement writes the session and its first refresh token: both or neither.
    await db.query(
      `with s as (
         insert into sessions (id, user_id, device_id, mode, successor_key, ip, user_agent, created_at, last_used_at, reauth_at, idle_expires_at, absolute_expires_at, mfa_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8, $9, $10, $13) returning id)
       insert into refresh_tokens (id, session_id, token_hash, created_at) select $11, s.id, $12, $8 from s`,
      [
        sessionId,
        userId,
        ctx.deviceId ?? null,
        ctx.mode,
        randomBytes(32).toString('base64url'),
        ctx.ip,
        ctx.userAgent?.slice(0, 512) ?? null,
        new Date(t),
        new Date(idle),
        new Date(absolute),
        randomUUID(),
        hashToken(refreshToken),
        ctx.secondFactor === true ? new Date(t) : null,
      ],
    );
    return issue(userId, sessionId, refreshToken, Math.min(idle, absolute));
  }

  async function revokeSessionRow(sessionId: string, reason: string): Promise<void> {
    await db.query('update sessions set revoked_at = $2, revoked_reason = $3 where id = $1 and revoked_at is null', [sessionId, new Date(now()), reason]);
    await sessionState.markRevoked([sessionId]);
  }

  async function refresh(refreshToken: string): Promise<IssuedTokens> {
    if (!REFRESH_RE.test(refreshToken)) throw new AppError('REFRESH_TOKEN_INVALID');
    const t = now();
    // One read: the token and its session together.
    const found = await db.query<RefreshRow & Omit<SessionRow, 'id'>>(
      `select r.id, r.session_id, r.used_at, s.user_id, s.successor_key, s.revoked_at, s.idle_expires_at, s.absolute_expires_at
         from refresh_tokens r join sessions s on s.id = r.session_id where r.token_hash = $1`,
      [hashToken(refreshToken)],
    );
    const row = found.rows[0];
    if (!row || row.revoked_at !== null || toMs(row.idle_expires_at) <= t || toMs(row.absolute_expires_at) <= t) {
      throw new AppError('REFRESH_TOKEN_INVALID');
    }
    const session: SessionRow = { ...row, id: row.session_id };
    const successor = successorOf(refreshToken, session.successor_key);
    const idle = Math.min(t + settings.refreshIdleSeconds * 1000, toMs(session.absolute_expires_at));

    if (row.used_at === null) {
      const claimed = await db.transaction(async (tx) => {
        const upd = await tx.query('update refresh_tokens set used_at = $2 where id = $1 and used_at is null', [row.id, new Date(t)]);
        if (upd.rowCount === 0) return false;
        await tx.query('insert into refresh_tokens (id, session_id, token_hash, parent_id, created_at) values ($1, $2, $3, $4, $5)', [
          randomUUID(),
          session.id,
          hashToken(successor),
          row.id,
          new Date(t),
        ]);
        await tx.query('update sessions set last_used_at = $2, idle_expires_at = $3 where id = $1', [session.id, new Date(t), new Date(idle)]);
        return true;
      });
      if (claimed) return issue(session.user_id, session.id, successor, idle);
    }
    // Used before: a racing tab inside the grace window gets the same successor; anyone later is a replay.
    const usedAt = row.used_at === null ? t : toMs(row.used_at);
    if (t - usedAt <= settings.reuseGraceSeconds * 1000) {
      return issue(session.user_id, session.id, successor, idle);
    }
    await revokeSessionRow(session.id, 'refresh-token-reuse');
    await note('auth.refresh.replayed', session.user_id, { session: session.id });
    logger.warn({ event: 'refresh_token_reuse', sessionId: session.id, userId: session.user_id }, 'refresh token replayed after its grace window: session revoked');
    throw new AppError('REFRESH_TOKEN_REUSED');
  }

  async function verifyAccess(token: string): Promise<VerifiedAccess | null> {
    let claims: AccessClaims;
    try {
      claims = await verifier.verify(token);
    } catch (err) {
      // Only a refused token is "no": a key store that cannot answer propagates (503, not 401).
      if (err instanceof TokenError) return null;
      throw err;
    }
    // Every access token names its session: revoking the session (or every session of the user,
    // or disabling the user) refuses it, from kv or, when kv does not know, from the database.
    if ((await sessionState.stateOf(claims.sub, claims.sid)) === 'revoked') return null;
    return { userId: claims.sub, sessionId: claims.sid, claims };
  }

  async function revokeSession(userId: string, sessionId: string, reason: string): Promise<boolean> {
    const r = await db.query('select id from sessions where id = $1 and user_id = $2 and revoked_at is null', [sessionId, userId]);
    if (r.rowCount === 0) return false;
    await revokeSessionRow(sessionId, reason);
    await note(reason === 'logout' ? 'auth.logout' : 'auth.session.revoked', userId, { session: sessionId, reason });
    return true;
  }

  async function revokeAllForUser(userId: string, reason: string, exceptSessionId?: string): Promise<number> {
    const r = await db.query<{ id: string }>(
      'update sessions set revoked_at = $2, revoked_reason = $3 where user_id = $1 and revoked_at is null and ($4::uuid is null or id <> $4::uuid) returning id',
      [userId, new Date(now()), reason, exceptSessionId ?? null],
    );
    await sessionState.markRevoked(r.rows.map((row) => row.id));
    if (reason === 'logout-all') await note('auth.logout_all', userId, { sessions: r.rowCount });
    return r.rowCount;
  }

  async function list(userId: string, currentSessionId?: string): Promise<SessionInfo[]> {
    const r = await db.query<{ id: string; mode: 'bearer' | 'cookie'; ip: string | null; user_agent: string | null; created_at: Date | string; last_used_at: Date | string }>(
      'select id, mode, ip, user_agent, created_at, last_used_at from sessions where user_id = $1 and revoked_at is null and absolute_expires_at > $2 and idle_expires_at > $2 order by last_used_at desc',
      [userId, new Date(now())],
    );
    return r.rows.map((s) => ({
      id: s.id,
      mode: s.mode,
      ip: s.ip,
      userAgent: s.user_agent,
      createdAt: new Date(toMs(s.created_at)).toISOString(),
      lastUsedAt: new Date(toMs(s.last_used_at)).toISOString(),
      current: s.id === currentSessionId,
    }));
  }

  async function markReauthenticated(sessionId: string): Promise<void> {
    await db.query('update sessions set reauth_at = $2 where id = $1', [sessionId, new Date(now())]);
  }

  /** When this (unrevoked) session last proved the password (a sign-in or a re-entry), in ms; null if never. */
  async function reauthenticatedAt(userId: string, sessionId: string): Promise<number | null> {
    const r = await db.query<{ reauth_at: Date | string | null }>('select reauth_at from sessions where id = $1 and user_id = $2 and revoked_at is null', [sessionId, userId]);
    const at = r.rows[0]?.reauth_at ?? null;
    return at === null ? null : toMs(at);
  }

  async function markSecondFactor(userId: string, sessionId: string): Promise<void> {
    await db.query('update sessions set mfa_at = $3 where id = $1 and user_id = $2 and revoked_at is null', [sessionId, userId, new Date(now())]);
  }

  async function secondFactorAt(userId: string, sessionId: string): Promise<number | null> {
    const r = await db.query<{ mfa_at: Date | string | null }>('select mfa_at from sessions where id = $1 and user_id = $2 and revoked_at is null', [sessionId, userId]);
    const at = r.rows[0]?.mfa_at ?? null;
    return at === null ? null : toMs(at);
  }

  const sessionRevoked = async (userId: string, sessionId: string): Promise<boolean> => (await sessionState.stateOf(userId, sessionId)) === 'revoked';

  return { create, refresh, verifyAccess, sessionRevoked, revokeSession, revokeAllForUser, list, markReauthenticated, reauthenticatedAt, markSecondFactor, secondFactorAt };
}
