/**
 * The migration runner shared by both adapters.
 *
 * The adapter provides a session that already holds the migration lock (a PostgreSQL
 * advisory lock on one dedicated connection, or an in-process mutex on PGlite) and runs as
 * the owner. The runner then makes sure the application role exists with the right
 * attributes and grants, refuses to go on when an applied migration was edited, and applies
 * each pending migration in its own transaction.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { APP_ROLE, type MigrationResult, type Queryable } from './db-types.ts';

/** The folder of SQL migrations shipped with the code. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/**
 * Key of the PostgreSQL advisory lock held for a whole migration run. Every node must use the
 * same key; the value is arbitrary but large, to stay clear of the small keys other tools pick.
 */
export const MIGRATION_LOCK_KEY = 7_351_902_446_118;

export interface Migration {
  /** The file name, which is also the id recorded in schema_migrations. */
  name: string;
  sql: string;
  /** sha256 of the file with line endings normalised. */
  checksum: string;
}

/** A transaction on the migration session; exec runs a whole multi-statement SQL file. */
export interface MigrationTx extends Queryable {
  exec(sql: string): Promise<void>;
}

/** One owner connection that holds the migration lock for the whole run. */
export interface MigrationSession {
  /** A single statement outside any transaction. */
  query: Queryable['query'];
  transaction<T>(fn: (tx: MigrationTx) => Promise<T>): Promise<T>;
}

export interface AppRoleOptions {
  /** PostgreSQL needs a LOGIN role for the app pool; PGlite only switches to it with SET ROLE. */
  login: boolean;
  /** Set on the role when given; never needed with trust auth. */
  password: string | undefined;
}

const NAME = /^\d{8}T\d{4}_[a-z0-9_]+\.sql$/;

/** Reads the migrations in filename order; throws on a .sql file whose name does not follow the timestamp pattern. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  // Default sort compares code units, so the order never depends on the machine's locale.
  const names = (await readdir(dir)).filter((name) => name.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const name of names) {
    if (!NAME.test(name)) {
      throw new Error(`migration file ${name} does not match YYYYMMDDTHHMM_name.sql; rename it so its order is explicit`);
    }
    // A checkout with CRLF line endings must not look like an edited migration.
    const sql = (await readFile(join(dir, name), 'utf8')).replaceAll('\r\n', '\n');
    migrations.push({ name, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

interface RoleRow {
  rolsuper: boolean;
  rolbypassrls: boolean;
  rolcreatedb: boolean;
  rolcreaterole: boolean;
  rolreplication: boolean;
  rolcanlogin: boolean;
}

const findRole = async (session: MigrationSession): Promise<RoleRow | undefined> =>
  (
    await session.query<RoleRow>(
      'select rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication, rolcanlogin from pg_roles where rolname = $1',
      [APP_ROLE],
    )
  ).rows[0];

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/**
 * Creates the application role when missing and puts its attributes and grants in the state
 * the security model needs. Roles are cluster-wide on PostgreSQL, so other databases (or test
 * files) may create it at the same moment; losing that race is fine.
 */
export async function ensureAppRole(session: MigrationSession, options: AppRoleOptions): Promise<void> {
  const attributes = `${options.login ? 'LOGIN' : 'NOLOGIN'} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION`;
  let role = await findRole(session);
  let passwordSet = false;
  if (!role) {
    try {
      if (options.password === undefined) {
        await session.query(`CREATE ROLE ${APP_ROLE} ${attributes}`);
      } else {
        await runFormatted(session, `CREATE ROLE %I ${attributes} PASSWORD %L`, options.password);
      }
      passwordSet = true;
    } catch (err) {
      // 42710 duplicate_object, 23505 unique_violation on pg_authid: another session won the race.
      const code = errorCode(err);
      if (code !== '42710' && code !== '23505') throw err;
    }
    role = await findRole(session);
    if (!role) throw new Error(`role ${APP_ROLE} could not be created`);
  }
  const wrong =
    role.rolsuper || role.rolbypassrls || role.rolcreatedb || role.rolcreaterole || role.rolreplication ||
    role.rolcanlogin !== options.login;
  // Only altered when wrong: concurrent ALTER ROLE on one role fails with "tuple concurrently updated".
  if (wrong) await retryConcurrentUpdate(() => session.query(`ALTER ROLE ${APP_ROLE} ${attributes}`));
  if (options.password !== undefined && !passwordSet) {
    const password = options.password;
    await retryConcurrentUpdate(() => runFormatted(session, 'ALTER ROLE %I PASSWORD %L', password));
  }

  await session.transaction(async (tx) => {
    await tx.exec(`
      GRANT USAGE ON SCHEMA public TO ${APP_ROLE};
      -- PostgreSQL before 15 lets every role create in public, and a table the app role
      -- created would be one it owns and could strip RLS from.
      REVOKE CREATE ON SCHEMA public FROM PUBLIC;
      REVOKE CREATE ON SCHEMA public FROM ${APP_ROLE};
      ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${APP_ROLE};
      ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${APP_ROLE};
    `);
  });
}

/** Passwords cannot be bind parameters in DDL, so the server quotes them with format(). */
async function runFormatted(session: MigrationSession, template: string, password: string): Promise<void> {
  const built = await session.query<{ statement: string }>('select format($1::text, $2::text, $3::text) as statement', [
    template,
    APP_ROLE,
    password,
  ]);
  const statement = built.rows[0]?.statement;
  if (!statement) throw new Error('could not build the role statement');
  await session.query(statement);
}

async function retryConcurrentUpdate(run: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await run();
      return;
    } catch (err) {
      const concurrent = errorCode(err) === 'XX000' && err instanceof Error && /concurrently updated/.test(err.message);
      if (!concurrent || attempt >= 5) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

/**
 * Applies pending migrations. The caller must hold the migration lock and run as the owner.
 * Throws, applying nothing, when a migration recorded as applied has a different checksum
 * on disk. Migrations recorded in the database but absent on disk are left alone, so an
 * older node can still start during a rolling deploy.
 */
export async function runMigrations(
  session: MigrationSession,
  options: AppRoleOptions & { dir?: string },
): Promise<MigrationResult> {
  const migrations = await loadMigrations(options.dir);
  await session.query(
    'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now(), checksum text NOT NULL)',
  );
  await ensureAppRole(session, options);
  // Created before or after the default privileges were set, the app role must never edit it.
  await session.query(`REVOKE ALL ON schema_migrations FROM ${APP_ROLE}`);

  const applied = new Map(
    (await session.query<{ name: string; checksum: string }>('SELECT name, checksum FROM schema_migrations')).rows.map(
      (row) => [row.name, row.checksum],
    ),
  );
  const changed = migrations.filter((m) => applied.has(m.name) && applied.get(m.name) !== m.checksum);
  if (changed.length > 0) {
    const list = changed.map((m) => m.name).join(', ');
    throw new Error(
      `refusing to start: applied migration(s) ${list} changed on disk (checksum mismatch). ` +
        'Restore the original file and put the change in a new migration.',
    );
  }

  const done: string[] = [];
  for (const migration of migrations) {
    if (applied.has(migration.name)) continue;
    try {
      await session.transaction(async (tx) => {
        // Tables land in public whatever the owner's search_path says, where the grants and the RLS scan look.
        await tx.query("SELECT set_config('search_path', 'public', true)");
        await tx.exec(migration.sql);
        await tx.query('INSERT INTO schema_migrations (name, applied_at, checksum) VALUES ($1, now(), $2)', [
          migration.name,
          migration.checksum,
        ]);
      });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new Error(`migration ${migration.name} failed and was rolled back: ${reason}`, { cause: err });
    }
    done.push(migration.name);
  }
  return { applied: done, alreadyApplied: migrations.length - done.length };
}

/** A table, view or materialized view in public that could expose another tenant's rows, and why. */
export interface RlsGap {
  relation: string;
  problem: string;
}

/**
 * The TEN-3 catalog scan: every relation in schema public with a tenant_id column must be
 * filtered by row-level security for every role, owner included. Scans the catalog rather
 * than a list, so a table added by a later migration is covered without anyone remembering.
 */
export async function findRlsGaps(q: Queryable): Promise<RlsGap[]> {
  const result = await q.query<RlsGap>(`
    SELECT c.relname AS relation,
           CASE
             WHEN c.relkind IN ('r', 'p') AND NOT c.relrowsecurity THEN 'row level security is not enabled'
             WHEN c.relkind IN ('r', 'p') THEN 'row level security is not forced for the owner'
             WHEN c.relkind = 'm' THEN 'materialized views cannot have row level security'
             ELSE 'view runs with its owner''s rights (needs security_invoker = true)'
           END AS problem
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public'
       AND EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped)
       AND CASE c.relkind
             WHEN 'r' THEN NOT (c.relrowsecurity AND c.relforcerowsecurity)
             WHEN 'p' THEN NOT (c.relrowsecurity AND c.relforcerowsecurity)
             WHEN 'm' THEN true
             WHEN 'v' THEN NOT EXISTS (SELECT 1 FROM unnest(coalesce(c.reloptions, '{}')) o
                                        WHERE lower(o) IN ('security_invoker=true', 'security_invoker=on',
                                                           'security_invoker=1', 'security_invoker=yes'))
             ELSE false
           END
     ORDER BY c.relname`);
  return result.rows;
}
