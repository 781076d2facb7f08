/**
 * `gatehouse restore <id>`: into an empty data directory (embedded) or an empty database
 * (PostgreSQL), refusing anything else. The archive is authenticated as it streams; PostgreSQL
 * data goes through one pg_restore transaction whose last part is held back until the whole
 * archive and its manifest have checked out, so a bad or cut backup restores nothing. An embedded
 * restore marks the directory until it has been verified; a node refuses a marked directory and
 * the next restore clears it. Then the KEKs are installed from the key export (when given) and
 * the restored database is verified (verify-restored.ts).
 */
import { resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { keyFilePathOf } from '../keyring/source.ts';
import { readIdentityFile } from './age.ts';
import { destinationFromConfig, type Destination } from './destination.ts';
import { clusterExtractor, finishDataDir, prepareEmptyDataDir, PGDATA_PREFIX } from './embedded.ts';
import { BackupError } from './errors.ts';
import { installExportedKeks, readExportedKeks } from './keys.ts';
import type { BackupManifest, OuterManifest } from './manifest.ts';
import { DUMP_PREFIX, prepareEmptyDatabase, startPgRestore } from './postgres.ts';
import { readBackup, type EntryHandler } from './read.ts';
import { keksOfConfig, verifyManifestSignature } from './signature.ts';
import { verifyRestored, type RestoreReport } from './verify-restored.ts';

export type RestoreTarget = { dataDir: string } | { databaseUrl: string };

export interface RestoreOptions {
  /** The configuration with the backup section (destination, identity file) and the keyring settings. */
  config: Config;
  id: string;
  /** Default: the configuration's storage (databaseUrl, else dataDir). */
  target?: RestoreTarget;
  /** age identities; default: backup.identityFile. */
  identities?: readonly string[];
  /** The file `gatehouse keys export` wrote; installed as the target's key file. */
  keysFile?: string;
  destination?: Destination;
  onProgress?: (done: number, total: number) => void;
}

export function identitiesOf(config: Config, given?: readonly string[]): readonly string[] {
  if (given) return given;
  if (!config.backup.identityFile) throw new BackupError('BACKUP_NOT_CONFIGURED', 'no identity to decrypt with: set backup.identityFile');
  return readIdentityFile(config.backup.identityFile);
}

/**
 * The manifest signature check of a restore or verify: with the KEKs of the key export when one
 * is given, else the configured ones (KMS, GATEHOUSE_MASTER_KEYS, an existing key file). Loaded
 * only when the manifest is reached, so a truncated or wrongly keyed backup is refused first.
 */
export function manifestVerifier(config: Config, identities: readonly string[], keysFile?: string): (raw: Buffer, outer: OuterManifest) => Promise<void> {
  return async (raw, outer) => {
    const keks = keysFile ? { local: await readExportedKeks(keysFile, identities) } : await keksOfConfig(config);
    await verifyManifestSignature(keks, outer.id, outer.manifestSignature, raw);
  };
}

/** The configuration a node on the restored target would run with. */
export function targetConfig(config: Config, target: RestoreTarget): Config {
  const storage = 'dataDir' in target ? { ...config.storage, dataDir: resolve(target.dataDir), databaseUrl: undefined, databaseAppUrl: undefined } : { ...config.storage, databaseUrl: target.databaseUrl };
  return { ...config, storage } as Config;
}

function defaultTarget(config: Config): RestoreTarget {
  return config.storage.databaseUrl ? { databaseUrl: config.storage.databaseUrl } : { dataDir: config.storage.dataDir };
}

export interface RestoreResult {
  manifest: BackupManifest;
  report: RestoreReport;
  keyVersions?: number[];
}

function handlerFor(target: RestoreTarget): EntryHandler & { complete: () => Promise<void>; abort: () => Promise<void> } {
  if ('dataDir' in target) {
    const x = clusterExtractor(resolve(target.dataDir));
    return {
      begin: async (h) => {
        if (h.storage !== 'pglite') throw new BackupError('BACKUP_STORAGE_MISMATCH', `backup ${h.id} is of a PostgreSQL database; restore it into a database (DATABASE_URL)`);
      },
      entry: async (h) => {
        if (!h.name.startsWith(PGDATA_PREFIX)) throw new BackupError('BACKUP_MALFORMED', `unexpected entry ${h.name}`);
        await x.entry(h);
      },
      data: (c) => x.data(c),
      end: (h) => x.end(h),
      complete: async () => undefined,
      abort: () => x.abort(),
    };
  }
  const restore = startPgRestore(target.databaseUrl);
  let held: Buffer[] = [];
  let heldPart = false;
  return {
    begin: async (h) => {
      if (h.storage !== 'postgres') throw new BackupError('BACKUP_STORAGE_MISMATCH', `backup ${h.id} is of an embedded data directory; restore it into a data directory`);
    },
    entry: async (h) => {
      if (!h.name.startsWith(DUMP_PREFIX)) throw new BackupError('BACKUP_MALFORMED', `unexpected entry ${h.name}`);
      // The part before this one is whole and authenticated: pg_restore gets it now; this one waits.
      if (heldPart) for (const c of held) await restore.write(c);
      held = [];
      heldPart = true;
    },
    data: async (c) => {
      held.push(Buffer.from(c));
    },
    end: async () => undefined,
    complete: async () => {
      for (const c of held) await restore.write(c);
      await restore.finish();
    },
    abort: () => restore.abort(),
  };
}

export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const { config, id } = options;
  const target = options.target ?? defaultTarget(config);
  const destination = options.destination ?? destinationFromConfig(config);
  const identities = identitiesOf(config, options.identities);
  if ('dataDir' in target) await prepareEmptyDataDir(resolve(target.dataDir));
  else await prepareEmptyDatabase(target.databaseUrl);
  const handler = handlerFor(target);
  let manifest: BackupManifest;
  try {
    ({ manifest } = await readBackup(destination, id, identities, handler, manifestVerifier(config, identities, options.keysFile), options.onProgress));
    await handler.complete();
  } catch (err) {
    await handler.abort();
    throw err;
  }
  const tcfg = targetConfig(config, target);
  let keyVersions: number[] | undefined;
  if (options.keysFile) keyVersions = await installExportedKeks(options.keysFile, identities, keyFilePathOf(tcfg));
  const report = await verifyRestored(tcfg, manifest);
  if ('dataDir' in target) await finishDataDir(resolve(target.dataDir));
  return { manifest, report, ...(keyVersions ? { keyVersions } : {}) };
}
