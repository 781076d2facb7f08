/**
 * How the PostgreSQL adapter sends SQL: always the extended protocol, as a named statement per
 * distinct text, with result types parsed to the same JavaScript types as the PGlite adapter.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { QueryResult } from './db-types.ts';

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
export const types: pg.CustomTypesConfig = {
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
export function statement(sql: string, params: readonly unknown[] | undefined): ExtendedQueryConfig {
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

export function toResult<Row>(result: pg.QueryResult): QueryResult<Row> {
  // pg types rows loosely; Row is the caller's claim about their shape.
  return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
}
