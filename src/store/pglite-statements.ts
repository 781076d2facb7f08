/**
 * How the embedded adapter runs one statement: prepared once per session under a name, then
 * bound and executed in a single call into the WebAssembly module.
 */
import { parse, protocol, type PGlite, type Results } from '@electric-sql/pglite';
import type { QueryResult } from './db-types.ts';
import { prepareValue } from './pg-values.ts';

const identity = (value: string): string => value;

// The same JavaScript types as the PostgreSQL adapter: int8 as a string (no precision loss,
// as pg does), date as 'YYYY-MM-DD' (pg would build a local-time Date). Array types follow.
export const PARSERS = { 20: identity, 1082: identity };

export function toResult<Row>(result: Results<Row>): QueryResult<Row> {
  return { rows: result.rows, rowCount: result.rowCount ?? result.affectedRows ?? 0 };
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
export function createStatementCache() {
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
export type StatementCache = ReturnType<typeof createStatementCache>;

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
export async function runStatement<Row>(pg: PGlite, cache: StatementCache, sql: string, params: readonly unknown[] | undefined, inTransaction: boolean): Promise<QueryResult<Row>> {
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
