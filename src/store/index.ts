/**
 * Picks the storage adapter. The small rules both adapters must apply identically (tenant id
 * validation, the transaction scope guard) live in adapter-rules.ts, which the adapters import
 * directly so that no adapter imports this file (test/architecture/imports.test.ts refuses cycles).
 *
 * The adapters are imported lazily so an embedded install never loads `pg` and a PostgreSQL
 * install never loads the PGlite WebAssembly bundle.
 */
import type { Db } from './db-types.ts';

export type { Db, Queryable, QueryResult, MigrationResult } from './db-types.ts';
export { APP_ROLE, TENANT_SETTING } from './db-types.ts';
export { assertNotInTransaction, assertTenantId, runTransactionCallback } from './adapter-rules.ts';
export { asOwnerInTenant, forEachTenant } from './tenant-sweep.ts';

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
