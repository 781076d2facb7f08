/** `gatehouse migrate`: applies pending migrations as the owner (they also run at start). */
import type { LoadedConfig } from '../config/load.ts';
import { openStorage } from './storage.ts';

export async function runMigrate(loaded: LoadedConfig, out: (line: string) => void): Promise<void> {
  // Throws DataDirLockedError while a server runs on the embedded data directory; main.ts explains it.
  const storage = await openStorage(loaded.config);
  try {
    const result = await storage.db.migrate();
    for (const name of result.applied) out(`applied ${name}`);
    out(`${result.applied.length} migration(s) applied, ${result.alreadyApplied} already applied (${storage.db.kind}: ${storage.db.location})`);
  } finally {
    await storage.close();
  }
}
