/**
 * The S3 destination against a local S3-compatible server started here (s3rver on a free port),
 * the CLI's drill on a node under write load, and a destination that fails mid-write.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupError, createBackup, destinationFromConfig, exportKeks, listBackups, restoreBackup, verifyBackup, pruneBackups } from '../../src/backup/index.ts';
import { runDrill } from '../../src/cli/backup.ts';
import { kekSourceFromConfig } from '../../src/keyring/source.ts';
import { createDb } from '../../src/store/index.ts';
import { mkdirSync } from 'node:fs';
import { ageKey, backupConfig, tempDir, type AgeKey } from './fixture.ts';

let server: S3rver;
let endpoint: string;
let key: AgeKey;
const dirs: string[] = [];

beforeAll(async () => {
  const dir = tempDir('s3');
  dirs.push(dir);
  key = await ageKey(dir);
  server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: join(dir, 's3'), configureBuckets: [{ name: 'backups', configs: [] }] });
  const addr = (await server.run()) as { port: number };
  endpoint = `http://127.0.0.1:${addr.port}`;
});

afterAll(async () => {
  await server?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('S3 destination', () => {
  it('backs up to a bucket (archive first, manifest last), lists, verifies and restores from it', async () => {
    const base = tempDir('s3data');
    dirs.push(base);
    const cfg = backupConfig({
      dataDir: join(base, 'data'),
      key,
      overrides: { 'backup.s3.endpoint': endpoint, 'backup.s3.bucket': 'backups', 'backup.s3.prefix': 'node-a/' },
      env: { GATEHOUSE_BACKUP_S3_ACCESS_KEY_ID: 'S3RVER', GATEHOUSE_BACKUP_S3_SECRET_ACCESS_KEY: 'S3RVER' },
    });
    mkdirSync(cfg.storage.dataDir, { recursive: true });
    const db = await createDb({ dataDir: cfg.storage.dataDir });
    await db.migrate();
    const b = await createBackup({ config: cfg, db });
    await db.close();
    const list = await listBackups(cfg);
    expect(list.map((x) => x.id)).toEqual([b.outer.id]);
    expect(list[0]?.outer?.sha256).toBe(b.outer.sha256);
    await verifyBackup(cfg, b.outer.id);
    const r = await restoreBackup({ config: cfg, id: b.outer.id, target: { dataDir: join(base, 'restored') } });
    expect(r.report.tables).toBe(Object.keys(b.manifest.tables).length);
    expect((await pruneBackups(cfg, { now: () => Date.now() + 100 * 86_400_000 })).removed).toEqual([]);
  }, 120_000);

  it('an unreachable bucket fails the upload and leaves nothing that looks complete', async () => {
    const base = tempDir('s3bad');
    dirs.push(base);
    const cfg = backupConfig({
      dataDir: join(base, 'data'),
      key,
      overrides: { 'backup.s3.endpoint': endpoint, 'backup.s3.bucket': 'no-such-bucket', 'backup.s3.prefix': 'x/' },
      env: { GATEHOUSE_BACKUP_S3_ACCESS_KEY_ID: 'S3RVER', GATEHOUSE_BACKUP_S3_SECRET_ACCESS_KEY: 'S3RVER' },
    });
    const dest = destinationFromConfig(cfg);
    const id = 'gh-20261207T000000Z-0badf00d';
    const staging = await dest.stagingPath(id);
    writeFileSync(staging, 'encrypted bytes');
    const outer = { format: 1, id, createdAt: new Date().toISOString(), storage: 'pglite' as const, gatehouseVersion: '0', migrationLevel: '', bytes: 15, sha256: '0'.repeat(64), recipients: [] };
    const err = await dest.put(id, staging, outer).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as BackupError).code).toBe('BACKUP_WRITE_FAILED');
    expect(existsSync(staging)).toBe(false);
    const verr = await verifyBackup(cfg, id).catch((e: unknown) => e);
    expect((verr as BackupError).code).toBe('BACKUP_NOT_FOUND');
  }, 60_000);
});

describe('backup drill', () => {
  it('the drill on a loaded node prints RPO and RTO', async () => {
    const base = tempDir('drill');
    dirs.push(base);
    const cfg = backupConfig({ dataDir: join(base, 'data'), backupDir: join(base, 'backups'), key, overrides: { 'server.port': 0 } });
    const exported = await exportKeks(kekSourceFromConfig(cfg), [key.recipient]);
    const keys = join(base, 'keks.age');
    writeFileSync(keys, exported.file, { mode: 0o600 });
    const lines: string[] = [];
    const r = await runDrill({ config: cfg, sources: {} } as never, { keys, writes: 100_000 }, (l) => lines.push(l));
    expect(r.writesAcknowledged).toBeGreaterThan(0);
    expect(r.rtoMs).toBeGreaterThan(0);
    expect(lines.join('\n')).toMatch(/RPO \d+\.\d{3} s .*RTO \d+\.\d{3} s/);
  }, 180_000);
});
