/**
 * size-exception: createPostgresDb implements the Db interface (pool, tenant and user contexts,
 * owner role) over one shared pool; split by concern is pending (issue 17); no measured reason to
 * keep it whole.
 */
import { createHash } from 'node:crypto';
/**
 * The PostgreSQL adapter: an owner pool for migrations and fixtures, and an application pool
 * that logs in as the application role, so request code never holds a connection that could
 * own a table or bypass RLS, even after SQL injection.
 */
import pg from 'pg';
import { APP_ROLE, TENANT_SETTING, USER_SETTING, type Db, type Queryable, type QueryResult } from './db-types.ts';
import { assertNotInTransaction, assertTenantId, runTransactionCallback } from './adapter-rules.ts';
import { MIGRATION_LOCK_KEY, runMigrations, type MigrationSession } from './migrate.ts';

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

const passThrough = (value: string): string => value;
// pg-types declares its oids as an enum; plain numbers are what the server sends.
const builtinParser = pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => (value: string) => unknown;
// text[]'s parser reads any array literal into strings.
const stringArray = builtinParser(1009, 'text');
// The same JavaScript types as the PGlite adapter: date as 'YYYY-MM-DD' (pg's default is a
// local-time Date) and interval as PostgreSQL's text (PGlite has no interval object).
const TEXT_OVERRIDES = new Map<number, (value: string) => unknown>([
  [1082, passThrough],
  [1182, stringArray],
  [1186, passThrough],
  [1187, stringArray],
]);
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    (format ?? 'text') === 'text' && TEXT_OVERRIDES.has(oid)
      ? TEXT_OVERRIDES.get(oid)
      : builtinParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** pg knows queryMode at runtime; its type declarations do not list it yet. */
interface ExtendedQueryConfig extends pg.QueryConfig<unknown[]> {
  queryMode: 'extended';
}

/**
 * Always the extended protocol, as PGlite does: a parameterless string is then one statement,
 * never a stacked `...; drop table ...`, and both adapters accept the same SQL.
 */
function statement(sql: string, params: readonly unknown[] | undefined): ExtendedQueryConfig {
  return { name: statementName(sql), text: sql, values: params === undefined ? [] : [...params], queryMode: 'extended' };
}

const statementNames = new Map<string, string>();

/**
 * A named (prepared) statement per distinct SQL text: each connection parses and plans it once.
 * The name is a hash of the text, so two texts never share a name. Application SQL names its
 * columns: a prepared `select *` fails on a running node once a migration adds a column.
 */
function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (name === undefined) {
    name = `gh_${createHash('sha256').update(sql).digest('base64url').slice(0, 24)}`;
    if (statementNames.size < 10_000) statementNames.set(sql, name);
  }
  return name;
}

function toResult<Row>(result: pg.QueryResult): QueryResult<Row> {
  // pg types rows loosely; Row is the caller's claim about their shape.
  return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
}

/** The owner URL with the password and query string removed, safe for logs. */
function printable(url: string): string {
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

function deriveAppUrl(url: string, password: string | undefined): string {
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

/** Opens the PostgreSQL store; the application pool starts after migrate(), which creates its role. */
export async function createPostgresDb(options: PostgresDbOptions): Promise<Db> {
  const onPoolError = options.onPoolError ?? (() => undefined);
  const appUrl = options.appUrl ?? deriveAppUrl(options.url, options.appPassword);

  const makePool = (connectionString: string, max: number): pg.Pool => {
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
  };

  const ownerPool = makePool(options.url, 2);
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

  const inTransaction = async <T>(
    pool: pg.Pool,
    tenantId: string | undefined,
    fn: (tx: Queryable) => Promise<T>,
    userId = '',
  ): Promise<T> => {
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
  };

  const migrate = async () => {
    const client = await ownerPool.connect();
    try {
      // Session-level, on this one connection, for the whole run: a second node blocks here until the
      // first has finished, then finds nothing pending.
      await client.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
      const session: MigrationSession = {
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
      return await runMigrations(session, { login: true, password: options.appPassword });
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`).catch(() => undefined);
      // Destroyed rather than pooled: closing it releases the lock even when unlocking failed, and
      // drops any session state a migration left behind.
      client.release(true);
    }
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
      const result = await migrate();
      appPool ??= makePool(appUrl, options.poolSize ?? 10);
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
