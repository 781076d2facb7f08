/**
 * Checks a restored database before a node may start on it: row counts per table and the applied
 * migrations equal the manifest's; then (after this build's newer migrations) row-level security is
 * enabled and forced on every tenant table and the application role of one tenant sees no row of
 * another; the key-encryption keys open its data keys; and every audit log re-verifies against the
 * checkpoint keys and sizes the manifest recorded. Any difference: BACKUP_VERIFY_FAILED, named.
 */
import { existsSync } from 'node:fs';
import { createAuditLog, verifyExport } from '../audit/index.ts';
import type { Config } from '../config/schema.ts';
import { CryptoError } from '../crypto/errors.ts';
import { createKeyring } from '../keyring/keyring.ts';
import { createSigningKeys } from '../keyring/signing-keys.ts';
import { kekSourceFromConfig, keyFilePathOf } from '../keyring/source.ts';
import { createDb, type Db, type Queryable } from '../store/index.ts';
import { createMemoryKv } from '../store/kv/index.ts';
import { findRlsGaps } from '../store/migrate.ts';
import { roleBypassesRls } from '../store/tenant-sweep.ts';
import { BackupError } from './errors.ts';
import type { BackupManifest } from './manifest.ts';
import { appliedMigrations, tableCounts } from './snapshot-info.ts';

export interface RestoreReport {
  tables: number;
  rows: number;
  auditLogs: number;
  auditEvents: number;
  isolationChecked: string[];
}

const fail = (message: string): BackupError => new BackupError('BACKUP_VERIFY_FAILED', message);

/**
 * The owner's reads of every tenant's rows (row counts, which tenants a table holds). On PostgreSQL
 * row security is turned off for the transaction, so a count can never be of only what forced RLS
 * lets through: an owner that is neither superuser nor BYPASSRLS is refused up front, named
 * (PostgreSQL would refuse the first read too, naming only a table), as pg_dump refuses it.
 */
async function ownerRead<T>(db: Db, fn: (q: Queryable) => Promise<T>): Promise<T> {
  return db.asOwner(async (tx) => {
    if (db.kind === 'postgres') {
      const { role, bypasses } = await roleBypassesRls(tx);
      if (!bypasses) throw fail(`the owner role ${role} of the restored database is neither superuser nor BYPASSRLS, so it cannot read every tenant's rows (row-level security is forced on the owner too) to count them; verify the restore with an owner that has BYPASSRLS`);
      await tx.query('set local row_security = off');
    }
    return fn(tx);
  });
}

/** Row counts and migrations, before anything writes to the restored database. */
export async function checkFigures(db: Db, manifest: BackupManifest): Promise<{ tables: number; rows: number }> {
  const { counts, migrations } = await ownerRead(db, async (q) => ({ counts: await tableCounts(q), migrations: await appliedMigrations(q) }));
  if (migrations.join('\n') !== manifest.migrations.join('\n')) throw fail(`the restored database is at migration ${migrations.at(-1) ?? 'none'}; the backup recorded ${manifest.migrations.at(-1) ?? 'none'}`);
  const names = new Set([...Object.keys(counts), ...Object.keys(manifest.tables)]);
  let rows = 0;
  for (const t of [...names].sort()) {
    if (counts[t] !== manifest.tables[t]) throw fail(`table ${t} has ${counts[t] ?? 'no'} row(s) after the restore; the backup recorded ${manifest.tables[t] ?? 'no table'}`);
    rows += counts[t] ?? 0;
  }
  return { tables: names.size, rows };
}

/** No tenant table without forced RLS; one tenant's app-role transaction sees none of another's rows. */
export async function checkIsolation(db: Db): Promise<string[]> {
  const gaps = await db.asOwner((tx) => findRlsGaps(tx));
  if (gaps.length > 0) throw fail(`row-level security is missing after the restore: ${gaps.map((g) => `${g.relation} (${g.problem})`).join(', ')}`);
  const tables = await ownerRead(db, async (q) => {
    const r = await q.query<{ t: string }>(
      "select c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace join pg_attribute a on a.attrelid = c.oid where n.nspname = 'public' and c.relkind = 'r' and a.attname = 'tenant_id' and not a.attisdropped order by 1",
    );
    const out: { table: string; tenants: string[] }[] = [];
    for (const { t } of r.rows) {
      const ts = await q.query<{ id: string }>(`select distinct tenant_id::text as id from public."${t}" order by 1 limit 2`);
      if (ts.rows.length === 2) out.push({ table: t, tenants: ts.rows.map((x) => x.id) });
    }
    return out;
  });
  const checked: string[] = [];
  for (const { table, tenants } of tables) {
    const [a, b] = tenants as [string, string];
    const seen = await db.withTenant(a, (tx) => tx.query<{ n: number }>(`select count(*)::int as n from public."${table}" where tenant_id::text = $1`, [b]));
    if ((seen.rows[0]?.n ?? 0) !== 0) throw fail(`on the restored database, tenant ${a} reads ${seen.rows[0]?.n} row(s) of tenant ${b} in ${table}`);
    checked.push(table);
  }
  return checked;
}

/** Opens the restored database with the target configuration and runs every check. */
export async function verifyRestored(target: Config, manifest: BackupManifest): Promise<RestoreReport> {
  const db = await createDb({
    databaseUrl: target.storage.databaseUrl,
    appUrl: target.storage.databaseAppUrl,
    appPassword: target.storage.databaseAppPassword,
    dataDir: target.storage.databaseUrl ? undefined : target.storage.dataDir,
  });
  const kv = createMemoryKv();
  try {
    const figures = await checkFigures(db, manifest);
    await db.migrate();
    const isolationChecked = await checkIsolation(db);
    const wrapped = manifest.tables.data_keys ?? 0;
    if (wrapped > 0 && !target.keyring.masterKeys && !existsSync(keyFilePathOf(target))) {
      throw new BackupError('BACKUP_KEYS_MISSING', `the restored data holds wrapped data keys but there are no key-encryption keys at ${keyFilePathOf(target)}: pass --keys <file of gatehouse keys export>`);
    }
    const keyring = await createKeyring({ db, kv, source: kekSourceFromConfig(target) });
    try {
      try {
        await keyring.verifyKeks();
      } catch (err) {
        if (err instanceof CryptoError) throw fail(`the key-encryption keys do not open the restored data keys (${err.code})`);
        throw err;
      }
      const signing = await createSigningKeys({ db, kv, keyring });
      let events = 0;
      try {
        const log = createAuditLog({ db, keyring, signingKeys: signing, settings: target.audit, now: Date.now });
        for (const [tenantId, { size }] of Object.entries(manifest.audit)) {
          const report = await verifyExport(log.exportLines(tenantId), { trustedKeys: manifest.auditKeys, pins: { minSize: size }, threads: 0 });
          if (report.verdict !== 'VERIFIED') throw fail(`the audit log ${tenantId} does not verify after the restore: ${report.problem?.reason ?? report.verdict}`);
          events += size;
        }
      } finally {
        await signing.close();
      }
      return { ...figures, auditLogs: Object.keys(manifest.audit).length, auditEvents: events, isolationChecked };
    } finally {
      await keyring.close();
    }
  } finally {
    await kv.close();
    await db.close();
  }
}
