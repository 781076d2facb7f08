/** `gatehouse migrate`: applies pending migrations as the owner (they also run at start). */
import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import { ensureDataDir, lockDataDir } from '../store/data-dir.ts';
import { createDb } from '../store/index.ts';

export async function runMigrate(loaded: LoadedConfig, out: (line: string) => void): Promise<void> {
  const { config } = loaded;
  let lock: ReturnType<typeof lockDataDir> | undefined;
  let dataDir: string | undefined;
  if (!config.storage.databaseUrl) {
    dataDir = resolve(config.storage.dataDir);
    ensureDataDir(dataDir);
    // Throws DataDirLockedError while a server runs on this directory; main.ts explains it.
    lock = lockDataDir(dataDir);
  }
  try {
    const db = await createDb({
      databaseUrl: config.storage.databaseUrl,
      appUrl: config.storage.databaseAppUrl,
      appPassword: config.storage.databaseAppPassword,
      dataDir,
    });
    try {
      const result = await db.migrate();
      for (const name of result.applied) out(`applied ${name}`);
      out(`${result.applied.length} migration(s) applied, ${result.alreadyApplied} already applied (${db.kind}: ${db.location})`);
    } finally {
      await db.close();
    }
  } finally {
    lock?.release();
  }
}
