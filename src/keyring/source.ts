/** Picks the KEK source from the configuration: an HSM (PKCS#11), a KMS, the environment's versioned list, or the local key file. */
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { createEnvKekSource, createFileKekSource, type KekSource } from '../crypto/kek-source.ts';
import { createAwsKmsHttpClient } from '../crypto/kms-client.ts';
import { createKmsKekSource, type RemoteKekSource } from '../crypto/kms-kek.ts';
import { createPkcs11KekSource } from '../crypto/pkcs11-kek.ts';
import { ensureDataDir } from '../store/data-dir.ts';

export function kekSourceFromConfig(config: Config): KekSource | RemoteKekSource {
  const hsm = config.keyring.pkcs11;
  if (hsm.module) {
    // The schema requires these with module; checked again so a wiring slip cannot log in without a PIN.
    if (!hsm.tokenLabel || !hsm.pin) throw new Error('keyring.pkcs11: tokenLabel and pin are required with module');
    return createPkcs11KekSource({ module: hsm.module, tokenLabel: hsm.tokenLabel, pin: hsm.pin, keyLabel: hsm.keyLabel });
  }
  const kms = config.keyring.kms;
  if (kms.keys) {
    // The schema requires these with keys; checked again so a wiring slip cannot send unsigned calls.
    if (!kms.endpoint || !kms.region || !kms.accessKeyId || !kms.secretAccessKey) throw new Error('keyring.kms: endpoint, region and credentials are required with keys');
    const client = createAwsKmsHttpClient({
      endpoint: kms.endpoint,
      region: kms.region,
      credentials: { accessKeyId: kms.accessKeyId, secretAccessKey: kms.secretAccessKey, ...(kms.sessionToken ? { sessionToken: kms.sessionToken } : {}) },
      timeoutMs: kms.timeoutMs,
    });
    return createKmsKekSource({ client, keys: Object.fromEntries(Object.entries(kms.keys).map(([v, id]) => [Number(v), id])) });
  }
  if (config.keyring.masterKeys) return createEnvKekSource(config.keyring.masterKeys);
  if (!config.keyring.keyFile) ensureDataDir(resolve(config.storage.dataDir));
  return createFileKekSource(keyFilePathOf(config));
}

/** The local key file's absolute path: keyring.keyFile, else master-keys.json in the data directory. */
export function keyFilePathOf(config: Config): string {
  return config.keyring.keyFile ? resolve(config.keyring.keyFile) : join(resolve(config.storage.dataDir), 'master-keys.json');
}
