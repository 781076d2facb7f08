/**
 * Opens the configured storage the one way every command does: PostgreSQL when DATABASE_URL is
 * set, otherwise PGlite in the data directory, which is created private and locked for this
 * process (DataDirLockedError when a server holds it). `inMemory` is for tests.
 */
import { resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { assertNoUnfinishedRestore, ensureDataDir, lockDataDir } from '../store/data-dir.ts';
import type { Db } from '../store/db-types.ts';
import { createDb } from '../store/index.ts';

export interface OpenedStorage {
  db: Db;
  /** Records the listening URL in the data-directory lock, for other CLI commands. */
  announce: (url: string) => void;
  /** Closes the database and releases the data directory. */
  close: () => Promise<void>;
}

export async function openStorage(config: Config, options: { inMemory?: boolean } = {}): Promise<OpenedStorage> {
  let lock: ReturnType<typeof lockDataDir> | undefined;
  let dataDir: string | undefined;
  if (!config.storage.databaseUrl && !options.inMemory) {
    dataDir = resolve(config.storage.dataDir);
    ensureDataDir(dataDir);
    assertNoUnfinishedRestore(dataDir);
    lock = lockDataDir(dataDir);
  }
  try {
    const db = await createDb({
      databaseUrl: config.storage.databaseUrl,
      appUrl: config.storage.databaseAppUrl,
      appPassword: config.storage.databaseAppPassword,
      dataDir,
    });
    return {
      db,
      announce: (url) => lock?.update(url),
      close: async () => {
        try {
          await db.close();
        } finally {
          lock?.release();
        }
      },
    };
  } catch (err) {
    lock?.release();
    throw err;
  }
}
