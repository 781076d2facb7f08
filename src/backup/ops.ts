/** Listing, verifying and pruning backups, and the plain functions a job scheduler runs. */
import type { Config } from '../config/schema.ts';
import type { Db } from '../store/index.ts';
import { createBackup, type BackupResult } from './backup.ts';
import { destinationFromConfig, type Destination, type ListedBackup } from './destination.ts';
import type { BackupManifest, OuterManifest } from './manifest.ts';
import { readBackup } from './read.ts';
import { identitiesOf, manifestVerifier } from './restore.ts';

export async function listBackups(config: Config, destination?: Destination): Promise<ListedBackup[]> {
  return (destination ?? destinationFromConfig(config)).list();
}

/** Reads the whole backup (decrypting, authenticating, hashing every file, checking the manifest signature) without restoring it. */
export async function verifyBackup(
  config: Config,
  id: string,
  options: { destination?: Destination; identities?: readonly string[]; keysFile?: string; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ outer: OuterManifest; manifest: BackupManifest }> {
  const discard = async (): Promise<void> => undefined;
  const identities = identitiesOf(config, options.identities);
  const verify = manifestVerifier(config, identities, options.keysFile);
  return readBackup(options.destination ?? destinationFromConfig(config), id, identities, { begin: discard, entry: discard, data: discard, end: discard }, verify, options.onProgress);
}

/** The time a backup id carries (ids begin with the UTC time they were taken). */
export function timeOfId(id: string): number {
  const m = /^gh-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(id);
  if (!m) return NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/**
 * Removes backups older than backup.retentionDays, and incomplete ones (cut off while written)
 * older than a day. The newest complete backup is always kept, however old.
 */
export async function pruneBackups(config: Config, options: { destination?: Destination; now?: () => number } = {}): Promise<{ removed: string[]; kept: number }> {
  const destination = options.destination ?? destinationFromConfig(config);
  const now = options.now?.() ?? Date.now();
  const cutoff = now - config.backup.retentionDays * 86_400_000;
  const list = await destination.list();
  const complete = list.filter((b) => b.outer).sort((a, b) => timeOfId(a.id) - timeOfId(b.id));
  const newest = complete.at(-1)?.id;
  const removed: string[] = [];
  for (const b of list) {
    const t = timeOfId(b.id);
    const old = b.outer ? t < cutoff && b.id !== newest : t < now - 86_400_000;
    if (!old) continue;
    await destination.remove(b.id);
    removed.push(b.id);
  }
  return { removed, kept: list.length - removed.length };
}

/**
 * The scheduled job `backup` (src/backup/module.ts): one backup, then pruning. On the embedded
 * node it runs in the node's own process, which holds the database.
 */
export async function runScheduledBackup(deps: { config: Config; db: Db; destination?: Destination; now?: () => Date }): Promise<{ backup: BackupResult; pruned: string[] }> {
  const backup = await createBackup(deps);
  const now = deps.now;
  const { removed } = await pruneBackups(deps.config, { ...(deps.destination ? { destination: deps.destination } : {}), ...(now ? { now: () => now().getTime() } : {}) });
  return { backup, pruned: removed };
}
