/**
 * Strikes and temporary blocks of API keys and end users, per workspace. The database is the
 * source of truth; "blocked until" is cached in kv per subject, so a block written on one node
 * applies on every node at once (they all read the same kv entry), and a kv that cannot answer
 * falls back to the database. Nothing here ever answers "not blocked" from a failed read: errors
 * propagate, and the step turns them into a refusal.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { GuardPolicy } from './policy.ts';

/** How long kv keeps "not blocked" for a subject; a block overwrites it at once. */
const NOT_BLOCKED_CACHE_MS = 15_000;

/** A subject that earns strikes: an API key or an end user of a workspace. */
export type Subject = `key:${string}` | `user:${string}`;

/** The subject for an end-user id as the client sent it: its SHA-256, never the id itself. */
export function userSubject(endUserId: string): Subject {
  return `user:${createHash('sha256').update(endUserId).digest('hex').slice(0, 32)}`;
}

/** A subject's strike state as admins see it. */
export interface StrikeRow {
  subject: string;
  strikes: number;
  level: number;
  blockedUntil: string | null;
  lastBlockedAt: string | null;
}

/** The result of one strike. */
export interface StrikeResult {
  strikes: number;
  level: number;
  /** ms since epoch when this strike started a block; null when it did not. */
  blockedUntil: number | null;
}

function blockKey(tenantId: string, workspaceId: string, subject: string): string {
  return `guard:blk:${tenantId}:${workspaceId}:${subject}`;
}

export function createStrikeStore(deps: { db: Db; kv: Kv; now: () => number }) {
  const { db, kv, now } = deps;

  /** ms since epoch until which `subject` is blocked, or 0. kv first, the database when kv has nothing or fails. */
  async function blockedUntil(tenantId: string, workspaceId: string, subject: string): Promise<number> {
    const key = blockKey(tenantId, workspaceId, subject);
    let cached: string | null = null;
    let kvWorks = true;
    try {
      cached = await kv.get(key);
    } catch {
      kvWorks = false;
    }
    if (cached !== null && /^\d+$/.test(cached)) return Number(cached);
    const { rows } = await db.withTenant(tenantId, (tx) =>
      tx.query<{ until: string | null }>(
        `select (extract(epoch from blocked_until) * 1000)::bigint::text as until from guard_strikes
         where tenant_id = $1 and workspace_id = $2 and subject = $3 and blocked_until > to_timestamp($4 / 1000.0)`,
        [tenantId, workspaceId, subject, now()],
      ),
    );
    const until = rows[0]?.until ? Number(rows[0].until) : 0;
    if (kvWorks) {
      const ttl = until > 0 ? until - now() : NOT_BLOCKED_CACHE_MS;
      await kv.set(key, String(until), Math.max(ttl, 1)).catch(() => undefined);
    }
    return until;
  }

  /**
   * Counts one blocked attempt of `subject` in the database. The subject's row is locked (FOR
   * UPDATE) for the read-modify-write, so concurrent strikes on several nodes are all counted and
   * exactly one of them starts the block. A strike outside the window starts a new count; reaching
   * the threshold starts a block of blockSeconds × 2^level (at most maxBlockSeconds) and resets the
   * count. The block is then written to kv, where every node reads it.
   */
  async function strike(tenantId: string, workspaceId: string, subject: Subject, settings: GuardPolicy['strikes']): Promise<StrikeResult> {
    const at = now();
    const result = await db.withTenant(tenantId, async (tx) => {
      await tx.query(
        `insert into guard_strikes (tenant_id, workspace_id, subject, strikes, window_started_at, level, updated_at)
         values ($1, $2, $3, 0, to_timestamp($4 / 1000.0), 0, to_timestamp($4 / 1000.0)) on conflict do nothing`,
        [tenantId, workspaceId, subject, at],
      );
      const { rows } = await tx.query<{ strikes: number; started: string; level: number }>(
        `select strikes, (extract(epoch from window_started_at) * 1000)::bigint::text as started, level from guard_strikes
         where tenant_id = $1 and workspace_id = $2 and subject = $3 for update`,
        [tenantId, workspaceId, subject],
      );
      const row = rows[0];
      if (!row) throw new Error('guard strike row vanished');
      const fresh = Number(row.started) < at - settings.windowSeconds * 1000;
      const strikes = (fresh ? 0 : row.strikes) + 1;
      const windowStart = fresh ? at : Number(row.started);
      if (strikes < settings.threshold) {
        await tx.query(
          `update guard_strikes set strikes = $4, window_started_at = to_timestamp($5 / 1000.0), updated_at = to_timestamp($6 / 1000.0)
           where tenant_id = $1 and workspace_id = $2 and subject = $3`,
          [tenantId, workspaceId, subject, strikes, windowStart, at],
        );
        return { strikes, level: row.level, blockedUntil: null };
      }
      const seconds = Math.min(settings.blockSeconds * 2 ** Math.min(row.level, 30), settings.maxBlockSeconds);
      const until = at + seconds * 1000;
      await tx.query(
        `update guard_strikes set strikes = 0, window_started_at = to_timestamp($4 / 1000.0), level = level + 1,
           blocked_until = to_timestamp($5 / 1000.0), last_blocked_at = to_timestamp($4 / 1000.0), updated_at = to_timestamp($4 / 1000.0)
         where tenant_id = $1 and workspace_id = $2 and subject = $3`,
        [tenantId, workspaceId, subject, at, until],
      );
      return { strikes, level: row.level + 1, blockedUntil: until };
    });
    if (result.blockedUntil !== null) await kv.set(blockKey(tenantId, workspaceId, subject), String(result.blockedUntil), Math.max(result.blockedUntil - at, 1));
    return result;
  }

  /** The workspace's subjects that are blocked now or have strikes. */
  async function listStrikes(tenantId: string, workspaceId: string): Promise<StrikeRow[]> {
    const { rows } = await db.withTenant(tenantId, (tx) =>
      tx.query<{ subject: string; strikes: number; level: number; blocked_until: Date | null; last_blocked_at: Date | null }>(
        `select subject, strikes, level, blocked_until, last_blocked_at from guard_strikes
         where tenant_id = $1 and workspace_id = $2 and (strikes > 0 or blocked_until > to_timestamp($3 / 1000.0))
         order by blocked_until desc nulls last, subject limit 1000`,
        [tenantId, workspaceId, now()],
      ),
    );
    const iso = (d: Date | null): string | null => (d && d.getTime() > now() ? new Date(d).toISOString() : null);
    return rows.map((r) => ({ subject: r.subject, strikes: r.strikes, level: r.level, blockedUntil: iso(r.blocked_until), lastBlockedAt: r.last_blocked_at ? new Date(r.last_blocked_at).toISOString() : null }));
  }

  /** Lifts a subject's block and clears its strikes (the level stays: the next block is still longer). False when it had none. */
  async function lift(tenantId: string, workspaceId: string, subject: string): Promise<boolean> {
    const { rows } = await db.withTenant(tenantId, (tx) =>
      tx.query(
        `update guard_strikes set blocked_until = null, strikes = 0, updated_at = now()
         where tenant_id = $1 and workspace_id = $2 and subject = $3 and (blocked_until > to_timestamp($4 / 1000.0) or strikes > 0) returning subject`,
        [tenantId, workspaceId, subject, now()],
      ),
    );
    // Written even when nothing was lifted, so a stale cached block goes too; a failure reaches the admin (503) to retry.
    await kv.set(blockKey(tenantId, workspaceId, subject), '0', NOT_BLOCKED_CACHE_MS);
    return rows.length > 0;
  }

  return { blockedUntil, strike, listStrikes, lift };
}
