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
 * size-exception: createPgliteDb is one factory closure of small functions over shared services (133 lines);
 * split by concern is pending; no measured reason to keep it whole.
 */
import { PGlite, parse, protocol, type Results, type Transaction } from '@electric-sql/pglite';
import { APP_ROLE, TENANT_SETTING, USER_SETTING, type Db, type Queryable, type QueryResult } from './db-types.ts';
import { assertNotInTransaction, assertTenantId, runTransactionCallback } from './adapter-rules.ts';
import { runMigrations, type MigrationSession } from './migrate.ts';
import { prepareValue } from './pg-values.ts';
import { initialiseDataDir, PGLITE_START_PARAMS } from './pglite-initdb.ts';

export interface PgliteDbOptions {
  /** Data directory; undefined keeps everything in memory. */
  dataDir: string | undefined;
}

const identity = (value: string): string => value;

// The same JavaScript types as the PostgreSQL adapter: int8 as a string (no precision loss,
// as pg does), date as 'YYYY-MM-DD' (pg would build a local-time Date). Array types follow.
const PARSERS = { 20: identity, 1082: identity };

function toResult<Row>(result: Results<Row>): QueryResult<Row> {
  return { rows: result.rows, rowCount: result.rowCount ?? result.affectedRows ?? 0 };
}

function mutableParams(params: readonly unknown[] | undefined): unknown[] | undefined {
  return params === undefined ? undefined : [...params];
}

function concatMessages(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** How many prepared statements the session keeps; the oldest is closed past this. */
const MAX_PREPARED = 512;

/**
 * The session's prepared statements, by SQL text. PostgreSQL parses, analyses and plans a
 * statement sent by text every time: for the small statements of a request, with RLS policies,
 * that is most of their cost (1 to 2 ms each in WebAssembly). A named statement is parsed once;
 * PostgreSQL re-plans it by itself when the role, the schema or a policy changes.
 */
function createStatementCache() {
  const names = new Map<string, string>();
  let next = 0;
  return {
    /** The name for `sql`, whether it still has to be parsed, and the statements to close first. */
    lookup(sql: string): { name: string; known: boolean; evicted: string[] } {
      const known = names.get(sql);
      if (known !== undefined) return { name: known, known: true, evicted: [] };
      const evicted: string[] = [];
      while (names.size >= MAX_PREPARED) {
        const oldest = names.keys().next();
        if (oldest.done === true) break;
        evicted.push(names.get(oldest.value) ?? '');
        names.delete(oldest.value);
      }
      next += 1;
      return { name: `gh_${next}`, known: false, evicted };
    },
    remember(sql: string, name: string): void {
      names.set(sql, name);
    },
  };
}
type StatementCache = ReturnType<typeof createStatementCache>;

interface BackendMessage {
  name: string;
}

/**
 * One statement in one call into the WebAssembly module. PGlite's query() sends Parse, Describe,
 * Bind, Describe, Execute and Sync as six calls (the first Describe learns the parameter types to
 * serialise by) and parses the text anew each time. Here a statement is prepared once under a name
 * (the server infers parameter types, as it does for node-postgres), parameters are serialised by
 * node-postgres's rules, and Bind, Describe, Execute and Sync (with Parse the first time) go in
 * one call. The caller holds PGlite's query mutex (and, outside a transaction, its transaction
 * mutex), as query() itself does.
 */
async function runStatement<Row>(pg: PGlite, cache: StatementCache, sql: string, params: readonly unknown[] | undefined, inTransaction: boolean): Promise<QueryResult<Row>> {
  const values = (params ?? []).map((value) => prepareValue(value));
  const { name, known, evicted } = cache.lookup(sql);
  const parts: Uint8Array[] = evicted.map((old) => protocol.serialize.close({ type: 'S', name: old }));
  if (!known) parts.push(protocol.serialize.parse({ name, text: sql, types: [] }));
  parts.push(protocol.serialize.bind({ statement: name, values }), protocol.serialize.describe({ type: 'P' }), protocol.serialize.execute({}), protocol.serialize.sync());
  // Errors are read from the messages, so a statement whose Parse succeeded is remembered even
  // when its execution fails (a unique violation, say).
  const { messages } = await pg.execProtocol(concatMessages(parts), { syncToFs: !inTransaction, throwOnError: false });
  const list = messages as BackendMessage[];
  if (!known && list.some((m) => m.name === 'parseComplete')) cache.remember(sql, name);
  const failure = list.find((m) => m.name === 'error');
  if (failure) throw failure;
  const [result] = parse.parseResults(messages, pg.parsers) as Results<Row>[];
  return result ? toResult(result) : { rows: [], rowCount: 0 };
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

  const session: MigrationSession = {
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
      const result = migrationQueue.then(() => runMigrations(session, { login: false, password: undefined }));
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
