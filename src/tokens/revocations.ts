/**
 * Revoking one client token by its id (jti) (GW-6), without revoking its parent key. The database
 * is the source of truth: `client_token_revocations` holds the revocation until the token has surely
 * expired. kv (Redis: shared by every node) caches the answer in front of it, as sessions do
 * (src/identity/session-state.ts):
 *   - `revoked` is written (overwriting) right after the database commit, on every node at once;
 *   - `live` is written by a reader only when absent (SET NX), so a reader that saw no revocation
 *     just before one commits cannot overwrite it; it lives `liveCacheMs`.
 * An absent entry or a kv that cannot answer means "ask the database", never "not revoked": a
 * restarted node or a Redis that lost its memory cannot bring a revoked token back. A database
 * that cannot answer is an error (503), never a verdict.
 */
import type { Logger } from 'pino';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import { forEachTenant } from '../store/tenant-sweep.ts';

const LIVE = 'live';
const REVOKED = 'revoked';
const TOKEN_ID_RE = /^[A-Za-z0-9_-]{16,64}$/;
const keyOf = (tenantId: string, workspaceId: string, tokenId: string): string => `tok:rv:${tenantId}:${workspaceId}:${tokenId}`;

export interface TokenRevocations {
  /** Whether the token `tokenId` of the workspace was revoked: kv when cached there, else the database. */
  revoked(tenantId: string, workspaceId: string, tokenId: string): Promise<boolean>;
  /**
   * Records the revocation (database first, then kv); false when it was revoked already. Kept
   * `keepMs` by default, or until `keepUntil` (ms) for a statement that lives longer (a refresh token).
   */
  revoke(input: { tenantId: string; workspaceId: string; tokenId: string; by: string; keepUntil?: number }): Promise<boolean>;
  /** Deletes revocations of tokens that have surely expired, tenant by tenant; returns how many. */
  prune(signal?: AbortSignal): Promise<number>;
}

export function isTokenId(value: string): boolean {
  return TOKEN_ID_RE.test(value);
}

export function createTokenRevocations(deps: { db: Db; kv: Kv; logger: Logger; now: () => number; keepMs: number; liveCacheMs: number }): TokenRevocations {
  const { db, kv, logger } = deps;

  async function cached(key: string): Promise<boolean | null> {
    try {
      const value = await kv.get(key);
      return value === REVOKED ? true : value === LIVE ? false : null;
    } catch (err) {
      // A cache that cannot answer is a miss: the database decides.
      logger.warn({ err }, 'client token revocation cache unavailable; reading the database');
      return null;
    }
  }

  return {
    async revoked(tenantId, workspaceId, tokenId) {
      if (!isTokenId(tokenId)) return true;
      const key = keyOf(tenantId, workspaceId, tokenId);
      const hit = await cached(key);
      if (hit !== null) return hit;
      const r = await db.withTenant(tenantId, (tx) =>
        tx.query('select 1 from client_token_revocations where tenant_id = $1 and workspace_id = $2 and token_id = $3', [tenantId, workspaceId, tokenId]),
      );
      const revoked = r.rows.length > 0;
      try {
        if (revoked) await kv.set(key, REVOKED, deps.keepMs);
        else await kv.setIfAbsent(key, LIVE, deps.liveCacheMs);
      } catch (err) {
        logger.warn({ err }, 'could not cache a client token revocation state');
      }
      return revoked;
    },
    async revoke({ tenantId, workspaceId, tokenId, by, keepUntil: until }) {
      const keepMs = Math.max(deps.keepMs, (until ?? 0) - deps.now());
      const keepUntil = new Date(deps.now() + keepMs).toISOString();
      const r = await db.withTenant(tenantId, (tx) =>
        tx.query(
          'insert into client_token_revocations (tenant_id, workspace_id, token_id, keep_until, revoked_by) values ($1, $2, $3, $4, $5) on conflict (tenant_id, workspace_id, token_id) do nothing',
          [tenantId, workspaceId, tokenId, keepUntil, by],
        ),
      );
      try {
        await kv.set(keyOf(tenantId, workspaceId, tokenId), REVOKED, keepMs);
      } catch (err) {
        // Committed in the database already: nodes that cached the token live see the revocation
        // when that entry expires (liveCacheMs), every other check asks the database.
        logger.error({ err, tokenId }, 'could not record a client token revocation in kv');
      }
      return r.rowCount > 0;
    },
    async prune(signal) {
      // Per tenant, in its context: forced RLS hides every row from an owner that is no superuser.
      const at = new Date(deps.now()).toISOString();
      let pruned = 0;
      await forEachTenant(
        db,
        async (_tenantId, tx) => {
          pruned += (await tx.query('delete from client_token_revocations where keep_until < $1', [at])).rowCount;
        },
        signal ? { signal } : {},
      );
      return pruned;
    },
  };
}
