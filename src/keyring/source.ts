/** Picks the KEK source from the configuration: the environment's versioned list, or the local key file. */
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { createEnvKekSource, createFileKekSource, type KekSource } from '../crypto/kek-source.ts';
import { ensureDataDir } from '../store/data-dir.ts';

export function kekSourceFromConfig(config: Config): KekSource {
  if (config.keyring.masterKeys) return createEnvKekSource(config.keyring.masterKeys);
  const dir = resolve(config.storage.dataDir);
  if (!config.keyring.keyFile) ensureDataDir(dir);
  return createFileKekSource(config.keyring.keyFile ? resolve(config.keyring.keyFile) : join(dir, 'master-keys.json'));
}
