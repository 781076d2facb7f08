/**
 * Sessions, state side (AUTH-3): verifying an access token against its session's revocation
 * state, revoking one or all sessions of a user, listing them, and the re-authentication and
 * second-factor times sensitive actions ask about.
 */
import { TokenError, type AccessClaims } from './access-tokens.ts';
import { revokeSessionRow, toMs, type SessionDeps, type SessionInfo, type Sessions, type VerifiedAccess } from './sessions-types.ts';

export function createSessionStateOps(deps: SessionDeps): Omit<Sessions, 'create' | 'refresh'> {
  const { db, now, note, verifier, sessionState } = deps;

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
    await revokeSessionRow(deps, sessionId, reason);
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

  return { verifyAccess, sessionRevoked, revokeSession, revokeAllForUser, list, markReauthenticated, reauthenticatedAt, markSecondFactor, secondFactorAt };
}
