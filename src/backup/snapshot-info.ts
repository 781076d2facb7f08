/**
 * What the manifest records about the database, read in the same snapshot as the dump: row counts
 * of every table, applied migrations, each audit log's size and checkpoint keys, shredded tenants.
 * Restore verification reads the same figures from the restored database and compares.
 */
import type { Queryable } from '../store/index.ts';

export interface DatabaseFigures {
  tables: Record<string, number>;
  migrations: string[];
  audit: Record<string, { size: number }>;
  auditKeys: { kty: 'OKP'; crv: 'Ed25519'; x: string }[];
  shreddedTenants: string[];
  serverVersion: string;
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

async function hasTable(q: Queryable, name: string): Promise<boolean> {
  const r = await q.query<{ n: number }>("select count(*)::int as n from pg_tables where schemaname = 'public' and tablename = $1", [name]);
  return (r.rows[0]?.n ?? 0) > 0;
}

/** Row counts of every table in schema public (as the owner: row-level security is forced, so the caller must be allowed to see all). */
export async function tableCounts(q: Queryable): Promise<Record<string, number>> {
  const names = await q.query<{ t: string }>("select tablename as t from pg_tables where schemaname = 'public' order by tablename");
  const out: Record<string, number> = {};
  for (const { t } of names.rows) {
    const r = await q.query<{ n: string | number }>(`select count(*) as n from public.${quoteIdent(t)}`);
    out[t] = Number(r.rows[0]?.n ?? 0);
  }
  return out;
}

export async function appliedMigrations(q: Queryable): Promise<string[]> {
  if (!(await hasTable(q, 'schema_migrations'))) return [];
  return (await q.query<{ name: string }>('select name from schema_migrations order by name')).rows.map((r) => r.name);
}

/**
 * Reads the figures. The owner bypasses nothing here: on PostgreSQL the owner is subject to
 * FORCE ROW LEVEL SECURITY too, so the caller turns row security off for its transaction
 * (`set local row_security = off` fails instead of hiding rows when it is not allowed).
 */
export async function readFigures(q: Queryable): Promise<DatabaseFigures> {
  const tables = await tableCounts(q);
  const migrations = await appliedMigrations(q);
  const audit: DatabaseFigures['audit'] = {};
  if ('audit_heads' in tables) {
    for (const r of (await q.query<{ tenant_id: string; size: string | number }>('select tenant_id::text as tenant_id, size from audit_heads order by tenant_id')).rows) {
      audit[r.tenant_id] = { size: Number(r.size) };
    }
  }
  const auditKeys: DatabaseFigures['auditKeys'] = [];
  if ('signing_keys' in tables) {
    const keys = await q.query<{ jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string } }>("select public_jwk as jwk from signing_keys where purpose = 'audit-checkpoint' order by kid");
    for (const r of keys.rows) auditKeys.push({ kty: r.jwk.kty, crv: r.jwk.crv, x: r.jwk.x });
  }
  const shreddedTenants: string[] = [];
  if ('data_keys' in tables) {
    const r = await q.query<{ tenant_id: string }>("select tenant_id::text as tenant_id from data_keys group by tenant_id having bool_and(state = 'destroyed') order by tenant_id");
    for (const row of r.rows) shreddedTenants.push(row.tenant_id);
  }
  const version = await q.query<{ v: string }>('show server_version');
  return { tables, migrations, audit, auditKeys, shreddedTenants, serverVersion: version.rows[0]?.v ?? 'unknown' };
}
