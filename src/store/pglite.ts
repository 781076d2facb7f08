/**
 * The embedded adapter: PostgreSQL compiled to WebAssembly, in memory or in a data directory.
 *
 * PGlite has one session and it is a superuser. After migrations the session switches to the
 * application role for good (SET ROLE), so a plain query is one statement; a transaction adds the
 * tenant context with SET LOCAL, and the owner is entered only inside asOwner's exclusive
 * transaction (SET LOCAL ROLE NONE, undone at its end). RLS therefore holds for everything that
 * goes through this interface, but SQL run as the app role could `RESET ROLE` back to the
 * superuser: unlike PostgreSQL, this adapter does not defend against SQL injection at the role
 * level.
 *
 * Its parts: pglite-statements.ts (one prepared statement per call into the WebAssembly module)
 * and pglite-contexts.ts (the application, tenant, user and owner transactions).
 */
import { PGlite } from '@electric-sql/pglite';
import { assertNotInTransaction, assertTenantId, runTransactionCallback } from './adapter-rules.ts';
import { APP_ROLE, type Db, type Queryable, type QueryResult } from './db-types.ts';
import { runMigrations } from './migrate.ts';
import { createPgliteContexts } from './pglite-contexts.ts';
import { initialiseDataDir, PGLITE_START_PARAMS } from './pglite-initdb.ts';
import { createStatementCache, PARSERS, runStatement } from './pglite-statements.ts';

export interface PgliteDbOptions {
  /** Data directory; undefined keeps everything in memory. */
  dataDir: string | undefined;
}

/** Opens an embedded PGlite store; call migrate() before any query as the application role. */
export async function createPgliteDb(options: PgliteDbOptions): Promise<Db> {
  // A new directory is created in a child process, which gives initdb's memory back when it exits.
  if (options.dataDir !== undefined) await initialiseDataDir(options.dataDir);
  const pg = await PGlite.create(options.dataDir, { parsers: PARSERS, startParams: [...PGLITE_START_PARAMS] });
  let migrated = false;
  const statements = createStatementCache();
  let closed = false;
  // PGlite serialises statements but not a whole run: two migrate() calls must not both see the same migration as pending.
  let migrationQueue: Promise<unknown> = Promise.resolve();

  const assertUsable = (operation: string): void => {
    if (closed) throw new Error('PGlite storage is closed');
    assertNotInTransaction(operation);
  };

  const assertMigrated = (): void => {
    if (!migrated) throw new Error('PGlite storage: call migrate() before queries; it creates the application role');
  };

  const { run, asApp, asSessionOwner, migrationSession } = createPgliteContexts(pg, statements);

  return {
    kind: 'pglite',
    location: options.dataDir ?? 'memory',

    async query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
      assertUsable('query');
      assertMigrated();
      // The session is the app role with no tenant context: one statement, no transaction.
      return pg._runExclusiveTransaction(() => pg._runExclusiveQuery(() => runStatement<Row>(pg, statements, sql, params, false)));
    },

    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertUsable('transaction');
      assertMigrated();
      return asApp('', fn);
    },

    async withTenant<T>(tenantId: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertTenantId(tenantId);
      assertUsable('withTenant');
      assertMigrated();
      return asApp(tenantId, fn);
    },

    async withUser<T>(userId: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertTenantId(userId);
      assertUsable('withUser');
      assertMigrated();
      return asApp('', fn, userId);
    },

    async asOwner<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertUsable('asOwner');
      return asSessionOwner((tx) => runTransactionCallback((sql, params) => run(tx, sql, params), fn));
    },

    async migrate() {
      assertUsable('migrate');
      const result = migrationQueue.then(() => runMigrations(migrationSession, { login: false, password: undefined }));
      migrationQueue = result.catch(() => undefined);
      const outcome = await result;
      // From now on the session is the application role; only asOwner leaves it, locally.
      await pg.query(`SET ROLE ${APP_ROLE}`);
      migrated = true;
      return outcome;
    },

    ...(options.dataDir === undefined
      ? {}
      : {
          async withClusterQuiesced<T>(fn: (owner: Queryable, dataDir: string) => Promise<T>): Promise<T> {
            assertUsable('withClusterQuiesced');
            const dir = options.dataDir as string;
            return asSessionOwner(async (tx) => {
              // Dirty buffers reach the files; no other statement runs until fn is done.
              await run(tx, 'CHECKPOINT', undefined);
              return runTransactionCallback((sql, params) => run(tx, sql, params), (owner) => fn(owner, dir));
            });
          },
        }),

    async ping() {
      assertUsable('ping');
      await pg.query('SELECT 1');
    },

    async close() {
      if (closed) return;
      closed = true;
      await pg.close();
    },
  };
}
