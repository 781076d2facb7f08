/**
 * The PostgreSQL adapter: an owner pool for migrations and fixtures, and an application pool
 * that logs in as the application role, so request code never holds a connection that could
 * own a table or bypass RLS, even after SQL injection.
 *
 * Its parts: postgres-statements.ts (extended protocol, named statements, result types),
 * postgres-pools.ts (URLs, pools, transactions with the tenant context) and postgres-migrate.ts
 * (migrations under an advisory lock).
 */
import type pg from 'pg';
import { assertNotInTransaction, assertTenantId } from './adapter-rules.ts';
import { APP_ROLE, type Db, type Queryable, type QueryResult } from './db-types.ts';
import { migrateWithLock } from './postgres-migrate.ts';
import { deriveAppUrl, inTransaction, makePool, printable } from './postgres-pools.ts';
import { statement, toResult } from './postgres-statements.ts';

export interface PostgresDbOptions {
  /** Owner connection URL: runs migrations and owns every table. */
  url: string;
  /** Application role URL; by default `url` with the user set to the app role and the password to appPassword. */
  appUrl?: string;
  /** Password set on the application role by migrate() and used by the derived app URL. */
  appPassword?: string;
  /** Size of the application pool (default 10). */
  poolSize?: number;
  /** Told about connection errors the pools recovered from (a dropped idle connection, say). */
  onPoolError?: (err: Error) => void;
}

/** Opens the PostgreSQL store; the application pool starts after migrate(), which creates its role. */
export async function createPostgresDb(options: PostgresDbOptions): Promise<Db> {
  const onPoolError = options.onPoolError ?? (() => undefined);
  const appUrl = options.appUrl ?? deriveAppUrl(options.url, options.appPassword);
  const ownerPool = makePool(options.url, 2, onPoolError);
  let appPool: pg.Pool | undefined;
  let closed = false;

  const assertUsable = (operation: string): void => {
    if (closed) throw new Error('PostgreSQL storage is closed');
    assertNotInTransaction(operation);
  };

  const app = (): pg.Pool => {
    if (!appPool) {
      throw new Error(`PostgreSQL storage: call migrate() before queries; it creates the ${APP_ROLE} role the app pool logs in as`);
    }
    return appPool;
  };

  return {
    kind: 'postgres',
    location: printable(options.url),

    async query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
      assertUsable('query');
      return toResult<Row>(await app().query(statement(sql, params)));
    },

    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertUsable('transaction');
      return inTransaction(app(), '', fn);
    },

    async withTenant<T>(tenantId: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertTenantId(tenantId);
      assertUsable('withTenant');
      return inTransaction(app(), tenantId, fn);
    },

    async withUser<T>(userId: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertTenantId(userId);
      assertUsable('withUser');
      return inTransaction(app(), '', fn, userId);
    },

    async asOwner<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertUsable('asOwner');
      return inTransaction(ownerPool, undefined, fn);
    },

    async migrate() {
      assertUsable('migrate');
      const result = await migrateWithLock(ownerPool, options.appPassword);
      appPool ??= makePool(appUrl, options.poolSize ?? 10, onPoolError);
      return result;
    },

    async ping() {
      assertUsable('ping');
      await (appPool ?? ownerPool).query('SELECT 1');
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([ownerPool.end(), appPool?.end()]);
    },
  };
}
