/**
 * Sessions, issuing side (AUTH-3): a new session with its first refresh token, and the rotation of
 * a refresh token with reuse detection (a racing reuse within the grace window gets the same
 * successor; a replay after it revokes the session).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import { issueAccessToken } from './access-tokens.ts';
import { hashToken, revokeSessionRow, toMs, type IssuedTokens, type RefreshRow, type SessionContext, type SessionDeps, type SessionRow } from './sessions-types.ts';

const REFRESH_PREFIX = 'ghr_';
const REFRESH_RE = /^ghr_([A-Za-z0-9_-]{43})$/;

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

export function createSessionIssue(deps: SessionDeps): { create(userId: string, ctx: SessionContext): Promise<IssuedTokens>; refresh(refreshToken: string): Promise<IssuedTokens> } {
  const { db, signingKeys, settings, logger, now, note } = deps;

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
    await revokeSessionRow(deps, session.id, 'refresh-token-reuse');
    await note('auth.refresh.replayed', session.user_id, { session: session.id });
    logger.warn({ event: 'refresh_token_reuse', sessionId: session.id, userId: session.user_id }, 'refresh token replayed after its grace window: session revoked');
    throw new AppError('REFRESH_TOKEN_REUSED');
  }

  return { create, refresh };
}
