/** Migrations on PostgreSQL: one run at a time across every node, under a session advisory lock. */
import type pg from 'pg';
import type { MigrationResult } from './db-types.ts';
import { MIGRATION_LOCK_KEY, runMigrations, type MigrationSession } from './migrate.ts';
import { toResult } from './postgres-statements.ts';

/** The owner's migration session on one connection. */
function sessionOn(client: pg.PoolClient): MigrationSession {
  return {
    query: async <Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]) =>
      toResult<Row>(await client.query(sql, params === undefined ? undefined : [...params])),
    transaction: async (fn) => {
      await client.query('BEGIN');
      try {
        const value = await fn({
          query: async <Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]) =>
            toResult<Row>(await client.query(sql, params === undefined ? undefined : [...params])),
          // Without parameters pg uses the simple protocol, which accepts a whole file of statements.
          exec: async (sql) => {
            await client.query(sql);
          },
        });
        await client.query('COMMIT');
        return value;
      } catch (err) {
        // The migration's own error is the one worth reporting; the connection is destroyed below anyway.
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    },
  };
}

/** Runs the pending migrations on a connection of the owner pool; `appPassword` is set on the application role. */
export async function migrateWithLock(ownerPool: pg.Pool, appPassword: string | undefined): Promise<MigrationResult> {
  const client = await ownerPool.connect();
  try {
    // Session-level, on this one connection, for the whole run: a second node blocks here until the
    // first has finished, then finds nothing pending.
    await client.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
    return await runMigrations(sessionOn(client), { login: true, password: appPassword });
  } finally {
    await client.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`).catch(() => undefined);
    // Destroyed rather than pooled: closing it releases the lock even when unlocking failed, and
    // drops any session state a migration left behind.
    client.release(true);
  }
}
