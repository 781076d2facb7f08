/**
 * The small rules both storage adapters (PGlite and PostgreSQL) must apply identically: tenant id
 * validation and the transaction scope guard. A module of its own so the adapters need not import
 * store/index.ts, which imports them (no import cycles; test/architecture/imports.test.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Queryable, QueryResult } from './db-types.ts';

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
