/**
 * The PostgreSQL adapter's connections: its URLs (the application role's, derived from the
 * owner's; a printable one), its pools, and a transaction with or without a tenant context.
 */
import pg from 'pg';
import { runTransactionCallback } from './adapter-rules.ts';
import { APP_ROLE, TENANT_SETTING, USER_SETTING, type Queryable } from './db-types.ts';
import { statement, toResult, types } from './postgres-statements.ts';

/** The owner URL with the password and query string removed, safe for logs. */
export function printable(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    // The query string can carry password= or key file paths.
    parsed.search = '';
    return parsed.toString();
  } catch {
    return 'postgres (unparseable URL)';
  }
}

export function deriveAppUrl(url: string, password: string | undefined): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('cannot derive the application role URL from the database URL; set appUrl');
  }
  if (!parsed.hostname) throw new Error('the database URL has no host to derive the application role URL from; set appUrl');
  parsed.username = APP_ROLE;
  parsed.password = password === undefined ? '' : encodeURIComponent(password);
  parsed.searchParams.delete('password');
  return parsed.toString();
}

/** A pool that fails fast when the server is unreachable and reports the errors it recovers from. */
export function makePool(connectionString: string, max: number, onPoolError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    types,
    application_name: 'gatehouse',
    // An unreachable server must fail ping() and startup instead of hanging them.
    connectionTimeoutMillis: 10_000,
  });
  // An idle connection that dies emits on the pool; unhandled, that would crash the process.
  pool.on('error', (err) => onPoolError(err));
  // A checked-out connection has no pool listener; its error also surfaces on the next query, which releases it as broken.
  pool.on('connect', (client) => client.on('error', (err) => onPoolError(err)));
  return pool;
}

/**
 * Runs `fn` in one transaction on a connection of `pool`. With a `tenantId` (empty for none) the
 * tenant and user context is set locally; undefined (the owner) sets none.
 */
export async function inTransaction<T>(pool: pg.Pool, tenantId: string | undefined, fn: (tx: Queryable) => Promise<T>, userId = ''): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  let open = false;
  try {
    await client.query('BEGIN');
    open = true;
    // Local to the transaction, so the value is gone when the connection returns to the pool.
    // The app path always sets it (empty without a tenant) so nothing set earlier on the session can show through.
    if (tenantId !== undefined) {
      await client.query('SELECT set_config($1, $2, true), set_config($3, $4, true)', [TENANT_SETTING, tenantId, USER_SETTING, userId]);
    }
    const value = await runTransactionCallback(async (sql, params) => toResult(await client.query(statement(sql, params))), fn);
    const commit = await client.query('COMMIT');
    open = false;
    // COMMIT of a transaction where a statement failed (and fn swallowed the error) rolls back instead.
    if (commit.command === 'ROLLBACK') {
      throw new Error('the transaction was rolled back instead of committed: a statement inside it failed');
    }
    return value;
  } catch (err) {
    if (open) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
    }
    throw err;
  } finally {
    // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
    client.release(broken);
  }
}
