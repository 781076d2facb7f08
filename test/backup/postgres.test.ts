/**
 * Backups of PostgreSQL storage (OPS-1): pg_dump in the manifest's snapshot, restored with
 * pg_restore into an empty scratch database, where row-level security must hold exactly as before.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupError, createBackup, restoreBackup, type BackupResult } from '../../src/backup/index.ts';
import type { Config } from '../../src/config/schema.ts';
import { createDb } from '../../src/store/index.ts';
import { runDrill } from '../../src/cli/backup.ts';
import { findRlsGaps } from '../../src/store/migrate.ts';
import { createScratchPostgresDatabase } from '../support/pg-scratch.ts';
import { postgresTarget, requireUrl } from '../support/services.ts';
import { ageKey, backupConfig, seededNode, tempDir } from './fixture.ts';

const pgt = postgresTarget();
const skip = pgt.skipReason;

(skip ? describe.skip : describe)(`PostgreSQL backup${skip ? `: ${skip}` : ''}`, () => {
  let source: { url: string; drop: () => Promise<void> };
  let target: { url: string; drop: () => Promise<void> };
  let config: Config;
  let backup: BackupResult;
  let orgs: string[];

  beforeAll(async () => {
    const base = requireUrl(pgt);
    source = await createScratchPostgresDatabase(base);
    target = await createScratchPostgresDatabase(base);
    const dir = tempDir('pg');
    const key = await ageKey(dir);
    config = backupConfig({
      dataDir: join(dir, 'data'),
      backupDir: join(dir, 'backups'),
      key,
      env: { DATABASE_URL: source.url, GATEHOUSE_KEYRING_MASTER_KEYS: `1:${randomBytes(32).toString('base64')}` },
    });
    const s = await seededNode(config);
    orgs = s.orgs;
    try {
      backup = await createBackup({ config, db: s.node.db });
    } finally {
      await s.node.close();
    }
  }, 120_000);

  afterAll(async () => {
    await source?.drop();
    await target?.drop();
  });

  it('round trip: pg_restore into an empty database, row counts, audit logs and isolation verified', async () => {
    expect(backup.manifest.storage).toBe('postgres');
    expect(backup.manifest.files.every((f) => f.name === 'backup.json' || f.name.startsWith('postgres/dump.part-'))).toBe(true);
    const r = await restoreBackup({ config, id: backup.outer.id, target: { databaseUrl: target.url } });
    expect(r.report.rows).toBe(Object.values(backup.manifest.tables).reduce((a, b) => a + b, 0));
    expect(r.report.auditLogs).toBeGreaterThanOrEqual(3);
    expect(r.report.isolationChecked.length).toBeGreaterThan(0);
  }, 120_000);

  it('on the restored database the app role of one tenant cannot read another tenant\'s rows, and FORCE RLS is on every tenant table', async () => {
    const db = await createDb({ databaseUrl: target.url, dataDir: undefined });
    try {
      await db.migrate();
      expect(await db.asOwner((tx) => findRlsGaps(tx))).toEqual([]);
      const [a, b] = orgs as [string, string];
      const own = await db.withTenant(a, (tx) => tx.query<{ n: number }>('select count(*)::int as n from memberships where tenant_id = $1', [a]));
      const other = await db.withTenant(a, (tx) => tx.query<{ n: number }>('select count(*)::int as n from memberships where tenant_id = $1', [b]));
      expect(own.rows[0]?.n).toBeGreaterThan(0);
      expect(other.rows[0]?.n).toBe(0);
      const role = await db.query<{ u: string }>('select current_user as u');
      expect(role.rows[0]?.u).toBe('gatehouse_app');
    } finally {
      await db.close();
    }
  }, 60_000);

  it('refuses a restore into a non-empty database', async () => {
    const err = await restoreBackup({ config, id: backup.outer.id, target: { databaseUrl: source.url } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as BackupError).code).toBe('BACKUP_TARGET_NOT_EMPTY');
  });

  it('the drill on PostgreSQL under write load restores into a scratch database and prints RPO and RTO', async () => {
    const scratch = await createScratchPostgresDatabase(requireUrl(pgt));
    try {
      const lines: string[] = [];
      const r = await runDrill({ config } as never, { scratchUrl: scratch.url, writes: 100_000 }, (l) => lines.push(l));
      expect(r.writesAcknowledged).toBeGreaterThan(0);
      expect(lines.join('\n')).toMatch(/RPO \d+\.\d{3} s .*RTO \d+\.\d{3} s/);
    } finally {
      await scratch.drop();
    }
  }, 180_000);

  it('refuses an embedded backup restored into a database and the reverse', async () => {
    const other = await createScratchPostgresDatabase(requireUrl(pgt));
    try {
      const dir = tempDir('mismatch');
      const err = await restoreBackup({ config, id: backup.outer.id, target: { dataDir: join(dir, 'd') } }).catch((e: unknown) => e);
      expect((err as BackupError).code).toBe('BACKUP_STORAGE_MISMATCH');
    } finally {
      await other.drop();
    }
  });
});
