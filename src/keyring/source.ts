/** Picks the KEK source from the configuration: the environment's versioned list, or the local key file. */
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { createEnvKekSource, createFileKekSource, type KekSource } from '../crypto/kek-source.ts';
import { ensureDataDir } from '../store/data-dir.ts';

export function kekSourceFromConfig(config: Config): KekSource {
  if (config.keyring.masterKeys) return createEnvKekSource(config.keyring.masterKeys);
  if (!config.keyring.keyFile) ensureDataDir(resolve(config.storage.dataDir));
  return createFileKekSource(keyFilePathOf(config));
}

/** The local key file's absolute path: keyring.keyFile, else master-keys.json in the data directory. */
export function keyFilePathOf(config: Config): string {
  return config.keyring.keyFile ? resolve(config.keyring.keyFile) : join(resolve(config.storage.dataDir), 'master-keys.json');
}
