/**
 * One running copy of a job across the cluster. On PostgreSQL: a transaction-scoped advisory lock
 * (`pg_try_advisory_xact_lock`) held by a transaction that stays open while the job runs, on a
 * connection of its own; a node that dies (or loses its connection) releases it with the
 * connection, so the job is never stuck. On embedded PGlite there is one process: a set in memory.
 */
import type { Db } from '../store/db-types.ts';

/** The advisory lock namespace of jobs (first key of the two-key form); the job name is hashed into the second. */
const LOCK_NAMESPACE = 'gatehouse.jobs';

export interface JobLock {
  /**
   * Runs `fn` while holding the job's lock, or returns `{ acquired: false }` at once when another
   * run (on any node) holds it. Throws when the lock could not be checked (fail closed).
   */
  withLock<T>(job: string, fn: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }>;
}

export function createJobLock(db: Db): JobLock {
  if (db.kind === 'pglite') {
    const held = new Set<string>();
    return {
      async withLock(job, fn) {
        if (held.has(job)) return { acquired: false };
        held.add(job);
        try {
          return { acquired: true, value: await fn() };
        } finally {
          held.delete(job);
        }
      },
    };
  }
  return {
    async withLock(job, fn) {
      // The lock's transaction stays open, on a connection of its own, until fn settles. fn runs
      // outside the transaction callback (its queries use other connections of the pool): the
      // callback only takes the lock and waits.
      let release: () => void = () => undefined;
      const released = new Promise<void>((resolve) => (release = resolve));
      let reportLocked: (locked: boolean) => void = () => undefined;
      const locked = new Promise<boolean>((resolve) => (reportLocked = resolve));
      const holder = db.transaction(async (tx) => {
        const { rows } = await tx.query<{ locked: boolean }>('select pg_try_advisory_xact_lock(hashtext($1), hashtext($2)) as locked', [LOCK_NAMESPACE, job]);
        const got = rows[0]?.locked === true;
        reportLocked(got);
        if (got) await released;
      });
      // A lock that could not be checked (no connection) is an error, never "free".
      const got = await Promise.race([locked, holder.then(() => false)]);
      if (!got) {
        await holder;
        return { acquired: false };
      }
      try {
        return { acquired: true, value: await fn() };
      } finally {
        release();
        // The connection may have died meanwhile (the lock went with it); the run itself is over.
        await holder.catch(() => undefined);
      }
    },
  };
}
