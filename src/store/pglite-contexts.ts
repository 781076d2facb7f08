/**
 * The embedded adapter's transaction contexts: the application role with a tenant or user
 * context (SET LOCAL), and the owner (the superuser session user), entered for one exclusive
 * transaction only. Also the session migrations run in, as the owner.
 */
import type { PGlite, Transaction } from '@electric-sql/pglite';
import { runTransactionCallback } from './adapter-rules.ts';
import { APP_ROLE, TENANT_SETTING, USER_SETTING, type Queryable, type QueryResult } from './db-types.ts';
import type { MigrationSession } from './migrate.ts';
import { runStatement, toResult, type StatementCache } from './pglite-statements.ts';

export interface PgliteContexts {
  /** One statement inside a transaction of pg.transaction() (whose mutex is held). */
  run(tx: Transaction, sql: string, params: readonly unknown[] | undefined): Promise<QueryResult<Record<string, unknown>>>;
  /** A transaction as the application role with this tenant (and user) context; empty clears it. */
  asApp<T>(tenantId: string, fn: (tx: Queryable) => Promise<T>, userId?: string): Promise<T>;
  /** A transaction as the owner, for one exclusive transaction only. */
  asSessionOwner<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** What runMigrations() works through: every statement as the owner. */
  migrationSession: MigrationSession;
}

function mutableParams(params: readonly unknown[] | undefined): unknown[] | undefined {
  return params === undefined ? undefined : [...params];
}

export function createPgliteContexts(pg: PGlite, statements: StatementCache): PgliteContexts {
  // Inside pg.transaction(): the transaction mutex is held, each statement takes the query mutex.
  const run = async (_tx: Transaction, sql: string, params: readonly unknown[] | undefined): Promise<QueryResult<Record<string, unknown>>> =>
    pg._runExclusiveQuery(() => runStatement<Record<string, unknown>>(pg, statements, sql, params, true));

  // PGlite's transaction() is exclusive, so no other caller's statement can land inside it.
  const asApp = <T>(tenantId: string, fn: (tx: Queryable) => Promise<T>, userId = ''): Promise<T> =>
    pg.transaction(async (tx) => {
      // One round trip; set_config(..., true) is SET LOCAL. The role is set again locally in case
      // the session role was ever changed; empty values clear anything the owner set.
      await run(tx, "SELECT set_config('role', $1, true), set_config($2, $3, true), set_config($4, $5, true)", [
        APP_ROLE,
        TENANT_SETTING,
        tenantId,
        USER_SETTING,
        userId,
      ]);
      return runTransactionCallback((sql, params) => run(tx, sql, params), fn);
    });

  // The owner: the superuser session user, entered for one exclusive transaction only.
  const asSessionOwner = <T>(fn: (tx: Transaction) => Promise<T>): Promise<T> =>
    pg.transaction(async (tx) => {
      await tx.query("SELECT set_config('role', 'none', true)");
      return fn(tx);
    });

  const migrationSession: MigrationSession = {
    query: async <Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]) =>
      asSessionOwner(async (tx) => toResult(await tx.query<Row>(sql, mutableParams(params)))),
    transaction: (fn) =>
      asSessionOwner(async (tx) =>
        fn({
          query: async <Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]) =>
            toResult(await tx.query<Row>(sql, mutableParams(params))),
          exec: async (sql) => {
            await tx.exec(sql);
          },
        }),
      ),
  };

  return { run, asApp, asSessionOwner, migrationSession };
}
