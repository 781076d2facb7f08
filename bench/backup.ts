/**
 * Backup benchmark (OPS-1): MB/s of `createBackup` and `restoreBackup` against two baselines
 * measured in the same run on the same data:
 *
 *   npm run bench:backup                                                   (embedded only)
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:backup  (embedded, then PostgreSQL)
 *
 * Data: a migrated database plus `bench_blob(id int primary key, data text)` with BENCH_ROWS rows
 * (default 40,000) of 1 KiB each, loaded by one insert ... select as the owner.
 * - Embedded: backup vs copying the cluster directory's bytes (fs.cp of the data directory);
 *   restore (decrypt, extract, verify: row counts, RLS, audit) vs copying the bytes back.
 * - PostgreSQL: backup vs a raw `pg_dump --format=custom --compress=0` to a file; restore vs a raw
 *   `pg_restore` of that file into an empty scratch database. Scratch databases are dropped at the end.
 * MB/s is over the plaintext bytes (cluster files, or the dump's size). Exit 1 when a restore
 * does not verify (restoreBackup throws).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { createBackup, restoreBackup } from '../src/backup/index.ts';
import { loadConfig } from '../src/config/load.ts';
import { createDb, type Db } from '../src/store/index.ts';
import { createScratchPostgresDatabase } from '../test/support/pg-scratch.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 40_000);
const base = mkdtempSync(join(tmpdir(), 'gh-bench-backup-'));
const identity = await generateX25519Identity();
const recipient = await identityToRecipient(identity);

const mbps = (bytes: number, ms: number): string => (bytes / 1_048_576 / (ms / 1000)).toFixed(1);
const time = async <T>(fn: () => Promise<T> | T): Promise<[T, number]> => {
  const t = performance.now();
  const r = await fn();
  return [r, performance.now() - t];
};
const dirBytes = (dir: string): number => Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);

async function seed(db: Db): Promise<void> {
  await db.migrate();
  await db.asOwner(async (tx) => {
    await tx.query('create table bench_blob (id int primary key, data text not null)');
    await tx.query("insert into bench_blob select g, repeat(md5(g::text), 32) from generate_series(1, $1) g", [ROWS]);
  });
}

function configFor(env: Record<string, string>, dataDir: string) {
  return loadConfig({ env, cwd: '/nonexistent', overrides: { 'storage.dataDir': dataDir, 'backup.dir': join(base, 'backups'), 'backup.recipients': [recipient], 'log.level': 'warn' } }).config;
}

function report(label: string, bytes: number, ours: number, baseline: number, baselineName: string): void {
  console.log(`${label}: ${(bytes / 1_048_576).toFixed(1)} MiB in ${ours.toFixed(0)} ms = ${mbps(bytes, ours)} MB/s; ${baselineName} ${mbps(bytes, baseline)} MB/s; ratio ${(baseline / ours).toFixed(2)}`);
}

try {
  // Embedded.
  const dataDir = join(base, 'data');
  mkdirSync(dataDir);
  const config = configFor({}, dataDir);
  const db = await createDb({ dataDir });
  await seed(db);
  const [backup, backupMs] = await time(() => createBackup({ config, db }));
  await db.close();
  const bytes = dirBytes(dataDir);
  const [, copyMs] = await time(() => cpSync(dataDir, join(base, 'copy'), { recursive: true }));
  report('embedded backup ', bytes, backupMs, copyMs, 'copy');
  const [, restoreMs] = await time(() => restoreBackup({ config, id: backup.outer.id, identities: [identity], target: { dataDir: join(base, 'restored') } }));
  const [, copyBackMs] = await time(() => cpSync(join(base, 'copy'), join(base, 'copy2'), { recursive: true }));
  report('embedded restore', bytes, restoreMs, copyBackMs, 'copy');
  console.log(`  (restore includes verification; encrypted archive ${(backup.outer.bytes / 1_048_576).toFixed(1)} MiB)`);

  if (process.env.DATABASE_URL) {
    const source = await createScratchPostgresDatabase(process.env.DATABASE_URL);
    const raw = await createScratchPostgresDatabase(process.env.DATABASE_URL);
    const target = await createScratchPostgresDatabase(process.env.DATABASE_URL);
    try {
      const pcfg = configFor({ DATABASE_URL: source.url }, join(base, 'pgdata-unused'));
      const pdb = await createDb({ databaseUrl: source.url, dataDir: undefined });
      await seed(pdb);
      await pdb.close();
      const dumpFile = join(base, 'raw.dump');
      const [, rawDumpMs] = await time(() => execFileSync('pg_dump', ['--format=custom', '--compress=0', `--file=${dumpFile}`, `--dbname=${source.url}`]));
      const dumpBytes = statSync(dumpFile).size;
      const pdb2 = await createDb({ databaseUrl: source.url, dataDir: undefined });
      const [pbackup, pBackupMs] = await time(() => createBackup({ config: pcfg, db: pdb2 }));
      await pdb2.close();
      report('postgres backup ', dumpBytes, pBackupMs, rawDumpMs, 'raw pg_dump');
      const [, rawRestoreMs] = await time(() => execFileSync('pg_restore', ['--no-owner', '--single-transaction', `--dbname=${raw.url}`, dumpFile]));
      const [, pRestoreMs] = await time(() => restoreBackup({ config: pcfg, id: pbackup.outer.id, identities: [identity], target: { databaseUrl: target.url } }));
      report('postgres restore', dumpBytes, pRestoreMs, rawRestoreMs, 'raw pg_restore');
    } finally {
      await source.drop();
      await raw.drop();
      await target.drop();
    }
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
