/**
 * Picks the storage adapter, and holds the small rules both adapters must apply identically
 * (tenant id validation, the transaction scope guard, result shape).
 *
 * The adapters are imported lazily so an embedded install never loads `pg` and a PostgreSQL
 * install never loads the PGlite WebAssembly bundle; that also keeps the adapters' static
 * imports of this file free of cycles.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Db, Queryable, QueryResult } from './db-types.ts';

export type { Db, Queryable, QueryResult, MigrationResult } from './db-types.ts';
export { APP_ROLE, TENANT_SETTING } from './db-types.ts';

export interface CreateDbOptions {
  /** PostgreSQL owner URL; when absent the embedded PGlite store is used. */
  databaseUrl?: string;
  /** PostgreSQL URL for the application role; derived from databaseUrl when absent. */
  appUrl?: string;
  /** Password of the application role on PostgreSQL (set on the role by migrate()). */
  appPassword?: string;
  /** PGlite data directory; undefined keeps the data in memory. Ignored for PostgreSQL. */
  dataDir: string | undefined;
  /** Told about connection errors the PostgreSQL pools recovered from. */
  onPoolError?: (err: Error) => void;
}

/** Opens PostgreSQL when a database URL is configured, the embedded PGlite store otherwise. Call migrate() before queries. */
export async function createDb(options: CreateDbOptions): Promise<Db> {
  if (options.databaseUrl) {
    const { createPostgresDb } = await import('./postgres.ts');
    return createPostgresDb({
      url: options.databaseUrl,
      ...(options.appUrl === undefined ? {} : { appUrl: options.appUrl }),
      ...(options.appPassword === undefined ? {} : { appPassword: options.appPassword }),
      ...(options.onPoolError === undefined ? {} : { onPoolError: options.onPoolError }),
    });
  }
  const { createPgliteDb } = await import('./pglite.ts');
  return createPgliteDb({ dataDir: options.dataDir });
}

// Lowercase only, so one tenant always has exactly one spelling in keys, logs and caches.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Throws a TypeError unless the value is a canonical lowercase UUID; runs before any database work. */
export function assertTenantId(tenantId: unknown): asserts tenantId is string {
  if (typeof tenantId !== 'string' || !UUID.test(tenantId)) {
    throw new TypeError('tenant id must be a lowercase UUID (8-4-4-4-12 hex)');
  }
}

interface TxScope {
  open: boolean;
}

const currentTx = new AsyncLocalStorage<TxScope>();

/**
 * Throws when called from inside a transaction callback. On PGlite a nested call waits for
 * the transaction it is nested in and deadlocks; on PostgreSQL it silently runs on another
 * connection, outside the tenant context and outside the transaction. Both are bugs.
 */
export function assertNotInTransaction(operation: string): void {
  if (currentTx.getStore()?.open) {
    throw new Error(
      `db.${operation}() was called inside a transaction callback; use the tx passed to the callback instead`,
    );
  }
}

/**
 * Runs fn with a tx handle that stops working once fn settles, so a handle leaked out of the
 * callback cannot run statements on a connection another caller has since been given.
 */
export async function runTransactionCallback<T>(
  run: (sql: string, params: readonly unknown[] | undefined) => Promise<QueryResult<Record<string, unknown>>>,
  fn: (tx: Queryable) => Promise<T>,
): Promise<T> {
  const scope: TxScope = { open: true };
  const tx: Queryable = {
    async query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
      if (!scope.open) throw new Error('this transaction has already ended; its tx handle cannot be used any more');
      // The adapters return untyped rows; Row is the caller's claim about their shape, as with pg itself.
      return (await run(sql, params)) as QueryResult<Row>;
    },
  };
  try {
    return await currentTx.run(scope, () => fn(tx));
  } finally {
    scope.open = false;
  }
}
