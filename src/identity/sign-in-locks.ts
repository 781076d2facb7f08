/**
 * The durable half of the sign-in lockout (AUTH-5): a throttle bucket that reached the lockout
 * threshold is recorded in `sign_in_locks`, so a restart of the node, or of a Redis that lost its
 * data, does not lift it. kv stays the atomic decider; the row is the floor kv is never read below
 * (BackoffRule.floorCount / floorLast). The database is the source of truth for the lock itself;
 * the counts below the threshold live in kv only.
 */
import type { Db } from '../store/db-types.ts';

/** A recorded lock: the bucket's failures at least this many, the latest at `lastFailureAt` (ms). */
export interface SignInLock {
  failures: number;
  lastFailureAt: number;
  hard: boolean;
}

interface LockRow {
  failures: number;
  last_failure_at: Date | string;
  hard_locked_at: Date | string | null;
}

const ms = (v: Date | string): number => (v instanceof Date ? v : new Date(v)).getTime();

/** The lock recorded for a bucket, or null. One primary-key read, whether the email has an account or not. */
export async function readSignInLock(db: Db, bucket: string): Promise<SignInLock | null> {
  const row = (await db.query<LockRow>('select failures, last_failure_at, hard_locked_at from sign_in_locks where bucket = $1', [bucket])).rows[0];
  return row ? { failures: row.failures, lastFailureAt: ms(row.last_failure_at), hard: row.hard_locked_at !== null } : null;
}

/**
 * Records that a bucket holds at least `failures` failures, the latest at `at`. Only ever raises
 * the stored state (greatest of both, the first locked_at and hard_locked_at kept), so parallel
 * writers on any number of nodes, in any order, leave the highest count and never lose the lock.
 */
export async function recordSignInLock(db: Db, bucket: string, failures: number, at: number, hard: boolean): Promise<void> {
  await db.query(
    `insert into sign_in_locks (bucket, failures, last_failure_at, locked_at, hard_locked_at) values ($1, $2, $3, $3, $4)
     on conflict (bucket) do update set
       failures = greatest(sign_in_locks.failures, excluded.failures),
       last_failure_at = greatest(sign_in_locks.last_failure_at, excluded.last_failure_at),
       hard_locked_at = coalesce(sign_in_locks.hard_locked_at, excluded.hard_locked_at)`,
    [bucket, failures, new Date(at), hard ? new Date(at) : null],
  );
}

/** Deletes the recorded locks of these buckets (a password reset, or a correct password in one). */
export async function clearSignInLocks(db: Db, buckets: readonly string[]): Promise<void> {
  if (buckets.length === 0) return;
  await db.query('delete from sign_in_locks where bucket = any($1::text[])', [buckets]);
}
