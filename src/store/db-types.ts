/**
 * One storage interface over embedded PGlite and PostgreSQL.
 *
 * Two identities exist in the database:
 * - the owner, which runs migrations and owns every table;
 * - the application role (`gatehouse_app`), which owns nothing, has no BYPASSRLS,
 *   and is the only identity request code ever uses.
 *
 * Tenant context lives only inside a transaction (`SET LOCAL`), so it can never
 * leak to the next user of a pooled connection.
 */

export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

/** A connection inside a transaction (or a single statement outside one). */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
}

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

export interface Db {
  readonly kind: 'pglite' | 'postgres';
  /** Where the data lives, safe to print (no credentials). */
  readonly location: string;
  /** A single statement as the application role, without tenant context. */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** A transaction as the application role, without tenant context. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs fn in a transaction as the application role with the tenant context set by
   * `SET LOCAL`, so row-level security policies see only that tenant's rows.
   * @example await db.withTenant(orgId, (tx) => tx.query('select * from notes'))
   */
  withTenant<T>(tenantId: string, fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs fn in a transaction as the application role with a user context (`SET LOCAL`) and no
   * tenant context. Only the policies written for it (a signed-in user reading their own
   * memberships across organizations) let rows through; every write still needs withTenant.
   * @example await db.withUser(userId, (tx) => tx.query('select tenant_id, role from memberships'))
   */
  withUser<T>(userId: string, fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** A transaction as the owner: migrations, and tests that set up fixtures. */
  asOwner<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Applies pending migrations under a lock, safe when several nodes start at once. */
  migrate(): Promise<MigrationResult>;
  /**
   * Embedded PGlite in a data directory only: runs fn while every other statement waits, after a
   * CHECKPOINT, with an owner connection inside one transaction and the data directory, whose
   * files then hold a consistent cluster (backups read them). Absent on PostgreSQL and in memory.
   */
  withClusterQuiesced?<T>(fn: (owner: Queryable, dataDir: string) => Promise<T>): Promise<T>;
  /** Throws when storage cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The name of the setting that carries the tenant id inside a transaction. */
export const TENANT_SETTING = 'gatehouse.tenant_id';
/** The name of the setting that carries the signed-in user's id inside a withUser transaction. */
export const USER_SETTING = 'gatehouse.user_id';
/** The application role: owns nothing, cannot bypass RLS. */
export const APP_ROLE = 'gatehouse_app';
