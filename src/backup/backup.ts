/**
 * Taking a backup: the storage's consistent dump and the manifest's figures (read in the same
 * snapshot) go into a tar that exists only encrypted (age, to backup.recipients), written to the
 * destination under a temporary name; the outer manifest is written last. Any failure removes
 * what was written, so nothing incomplete looks like a backup.
 */
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { Config } from '../config/schema.ts';
import type { Db, Queryable } from '../store/index.ts';
import { encryptStream } from './age.ts';
import { ArchiveWriter } from './archive.ts';
import { destinationFromConfig, writeStreamToFile, type Destination } from './destination.ts';
import { archiveCluster } from './embedded.ts';
import { BackupError } from './errors.ts';
import { ARCHIVE_FORMAT, newBackupId, type BackupHeader, type BackupManifest, type OuterManifest } from './manifest.ts';
import { DUMP_PREFIX, dumpPostgres } from './postgres.ts';
import { keksOfConfig, signManifest } from './signature.ts';
import { readFigures, type DatabaseFigures } from './snapshot-info.ts';

export const GATEHOUSE_VERSION = '0.1.0';

export interface BackupOptions {
  config: Config;
  /** The open storage (PGlite: this process holds it; PostgreSQL: the owner URL is taken from config). */
  db: Db;
  destination?: Destination;
  now?: () => Date;
  /** Bytes of the dump done and (PGlite) in all; total 0 when unknown. */
  onProgress?: (done: number, total: number) => void;
}

function headerOf(id: string, createdAt: Date, storage: 'pglite' | 'postgres', f: DatabaseFigures): BackupHeader {
  return { format: ARCHIVE_FORMAT, id, createdAt: createdAt.toISOString(), storage, gatehouseVersion: GATEHOUSE_VERSION, migrations: f.migrations, serverVersion: f.serverVersion };
}

/** Writes the plaintext tar into `out`; returns the manifest (already written as the last entry). */
async function produce(options: BackupOptions, id: string, createdAt: Date, out: PassThrough): Promise<{ manifest: BackupManifest; bytes: Buffer }> {
  const archive = new ArchiveWriter(out);
  const encode = (v: unknown): Buffer => Buffer.from(JSON.stringify(v, null, 2) + '\n');
  let figures: DatabaseFigures;
  let storage: 'pglite' | 'postgres';
  if (options.db.kind === 'pglite') {
    storage = 'pglite';
    const quiesced = options.db.withClusterQuiesced;
    if (!quiesced) throw new BackupError('BACKUP_NOT_CONFIGURED', 'an in-memory database cannot be backed up');
    figures = await quiesced.call<Db, [(owner: Queryable, dir: string) => Promise<DatabaseFigures>], Promise<DatabaseFigures>>(options.db, async (owner, dir) => {
      const f = await readFigures(owner);
      await archive.addBuffer('backup.json', encode(headerOf(id, createdAt, storage, f)));
      await archiveCluster(dir, archive, options.onProgress);
      return f;
    });
  } else {
    storage = 'postgres';
    const url = options.config.storage.databaseUrl;
    if (!url) throw new BackupError('BACKUP_NOT_CONFIGURED', 'PostgreSQL backups need storage.databaseUrl (the owner)');
    let done = 0;
    figures = await dumpPostgres(
      url,
      (f) => archive.addBuffer('backup.json', encode(headerOf(id, createdAt, storage, f))),
      async (part, index) => {
        await archive.addBuffer(`${DUMP_PREFIX}${String(index).padStart(5, '0')}`, part);
        done += part.length;
        options.onProgress?.(done, 0);
      },
    );
  }
  const manifest: BackupManifest = {
    ...headerOf(id, createdAt, storage, figures),
    finishedAt: (options.now?.() ?? new Date()).toISOString(),
    files: archive.files,
    tables: figures.tables,
    audit: figures.audit,
    auditKeys: figures.auditKeys,
    shreddedTenants: figures.shreddedTenants,
  };
  const bytes = encode(manifest);
  await archive.addBuffer('manifest.json', bytes, false);
  await archive.end();
  return { manifest, bytes };
}

export interface BackupResult {
  outer: OuterManifest;
  manifest: BackupManifest;
  destination: string;
}

/** Takes one backup now. */
export async function createBackup(options: BackupOptions): Promise<BackupResult> {
  const { config } = options;
  const destination = options.destination ?? destinationFromConfig(config);
  const recipients = config.backup.recipients;
  if (recipients.length === 0) throw new BackupError('BACKUP_NOT_CONFIGURED', 'no backup recipients: set backup.recipients (age1... public keys)');
  // The KEKs sign the manifest; loaded first, so a node without them writes nothing.
  const keks = await keksOfConfig(config, { create: true });
  const createdAt = options.now?.() ?? new Date();
  const id = newBackupId(createdAt, randomBytes(4).toString('hex'));
  const staging = await destination.stagingPath(id);
  const plain = new PassThrough({ highWaterMark: 1 << 20 });
  const hash = createHash('sha256');
  let bytes = 0;
  const encrypted = await encryptStream(recipients, plain);
  const hashed = encrypted.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk);
        bytes += chunk.length;
        controller.enqueue(chunk);
      },
    }),
  );
  let manifest: BackupManifest;
  let manifestBytes: Buffer;
  try {
    const producing = produce(options, id, createdAt, plain).catch((err: unknown) => {
      plain.destroy(err as Error);
      throw err;
    });
    const writing = writeStreamToFile(staging, hashed).catch((err: unknown) => {
      // A full or unreachable destination: the producer stops waiting for it (PGlite is let go).
      plain.destroy(err as Error);
      throw err;
    });
    [{ manifest, bytes: manifestBytes }] = await Promise.all([producing, writing]);
  } catch (err) {
    await rm(staging, { force: true });
    throw err;
  }
  const outer: OuterManifest = {
    format: ARCHIVE_FORMAT,
    id,
    createdAt: manifest.createdAt,
    storage: manifest.storage,
    gatehouseVersion: GATEHOUSE_VERSION,
    migrationLevel: manifest.migrations.at(-1) ?? '',
    bytes,
    sha256: hash.digest('hex'),
    recipients: [...recipients],
    manifestSignature: await signManifest(keks, id, manifestBytes),
  };
  await destination.put(id, staging, outer);
  return { outer, manifest, destination: destination.describe };
}
