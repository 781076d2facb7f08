/**
 * Whether a session may still be used (AUTH-3 revocation). The database is the source of truth:
 * a session is live while its row has no `revoked_at` and its user's status is `active`. Logout,
 * logout-all, a password change or reset, account deletion and an operator's disable all write
 * that state in the database before anything else.
 *
 * kv is only a cache in front of it, shared by every node (Redis) so a revocation reaches them
 * all at once:
 *   - `revoked` is written (overwriting) by every revocation right after the database commit and
 *     lives as long as an access token can;
 *   - `live` is written by a reader only when absent (SET NX), so a reader that saw the row just
 *     before a revocation cannot overwrite the revocation's `revoked`; it lives `liveCacheMs`.
 * An absent entry, or a kv that cannot answer, means "ask the database", never "not revoked":
 * a restarted node, a Redis restarted without persistence or a Redis outage cannot bring a
 * revoked session back. A database that cannot answer either is an error for the caller
 * (503), never a refusal of the credential.
 */
import type { Logger } from 'pino';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';

export type SessionState = 'live' | 'revoked';

export interface SessionStateCache {
  /** The state of `sessionId` of `userId`: from kv when cached there, else from the database. */
  stateOf(userId: string, sessionId: string): Promise<SessionState>;
  /** Records revocations in kv after the database commit (best effort: the database already refuses them). */
  markRevoked(sessionIds: readonly string[]): Promise<void>;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LIVE = 'live';
const REVOKED = 'revoked';

const keyOf = (sessionId: string): string => `auth:ss:${sessionId}`;

/**
 * @example const state = createSessionStateCache({ db, kv, logger, revokedTtlMs, liveCacheMs: 10_000 }); await state.stateOf(userId, sid)
 */
export function createSessionStateCache(deps: { db: Db; kv: Kv; logger: Logger; revokedTtlMs: number; liveCacheMs: number }): SessionStateCache {
  const { db, kv, logger, revokedTtlMs, liveCacheMs } = deps;

  async function cached(sessionId: string): Promise<SessionState | null> {
    try {
      const value = await kv.get(keyOf(sessionId));
      return value === LIVE || value === REVOKED ? value : null;
    } catch (err) {
      // A cache that cannot answer is a miss: the database decides.
      logger.warn({ err }, 'session state cache unavailable; reading the database');
      return null;
    }
  }

  async function fromDatabase(userId: string, sessionId: string): Promise<SessionState> {
    const r = await db.query<{ revoked_at: unknown; status: string }>(
      'select s.revoked_at, u.status from sessions s join users u on u.id = s.user_id where s.id = $1 and s.user_id = $2',
      [sessionId, userId],
    );
    const row = r.rows[0];
    return row !== undefined && row.revoked_at === null && row.status === 'active' ? 'live' : 'revoked';
  }

  async function remember(sessionId: string, state: SessionState): Promise<void> {
    try {
      if (state === 'live') await kv.setIfAbsent(keyOf(sessionId), LIVE, liveCacheMs);
      else await kv.set(keyOf(sessionId), REVOKED, revokedTtlMs);
    } catch (err) {
      logger.warn({ err }, 'could not cache a session state');
    }
  }

  return {
    async stateOf(userId, sessionId) {
      // A signed token always carries our own ids; anything else is no session of ours.
      if (!UUID_RE.test(sessionId) || !UUID_RE.test(userId)) return 'revoked';
      const hit = await cached(sessionId);
      if (hit !== null) return hit;
      const state = await fromDatabase(userId, sessionId);
      await remember(sessionId, state);
      return state;
    },
    async markRevoked(sessionIds) {
      for (const id of sessionIds) {
        try {
          await kv.set(keyOf(id), REVOKED, revokedTtlMs);
        } catch (err) {
          // Committed in the database already; nodes that cached the session live see the
          // revocation when that entry expires (liveCacheMs), every other read asks the database.
          logger.error({ err, sessionId: id }, 'could not record a session revocation in kv');
        }
      }
    },
  };
}
