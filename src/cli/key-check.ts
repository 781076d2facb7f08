/**
 * Does the keyring belong to this database? A node pointed at an existing PostgreSQL database
 * with a new data directory used to create a fresh key file and then stop on the first sealed
 * value with DECRYPT_FAILED, which names neither the key file nor the database. These checks
 * run before and right after the keyring opens and say what is wrong and what to do.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../config/schema.ts';
import { CryptoError } from '../crypto/errors.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { keyFilePathOf } from '../keyring/source.ts';
import type { Db } from '../store/db-types.ts';
import { asOwnerInTenant } from '../store/tenant-sweep.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';

/**
 * Data keys the database holds in wrapped form (destroyed ones hold nothing), counted in the first
 * tenant that holds any: 0 means none at all, more means at least that many. data_keys forces
 * row-level security on its owner too, so each tenant is read in its own context (an owner that is
 * no superuser sees no row without one). The platform tenant comes first: every database a node
 * has started on holds its signing keys' data key there, so the walk over the tenants runs only
 * for a database that holds none.
 */
export async function wrappedDataKeys(db: Db): Promise<number> {
  const count = async (tenantId: string): Promise<number> =>
    (await asOwnerInTenant(db, tenantId, (tx) => tx.query<{ n: number }>('select count(*)::int as n from data_keys where wrapped is not null'))).rows[0]?.n ?? 0;
  const platform = await count(PLATFORM_TENANT_ID);
  if (platform > 0) return platform;
  let after = PLATFORM_TENANT_ID;
  for (;;) {
    // The tenant registry has no RLS; as the owner, since this runs before migrate() may have.
    const { rows } = await db.asOwner((tx) => tx.query<{ id: string }>('select id::text as id from tenants where id > $1 order by id limit 500', [after]));
    for (const { id } of rows) {
      const n = await count(id);
      if (n > 0) return n;
    }
    const last = rows.at(-1);
    if (!last) return 0;
    after = last.id;
  }
}

function whereKeksComeFrom(config: Config): string {
  if (config.keyring.pkcs11.module) return `the PKCS#11 token "${config.keyring.pkcs11.tokenLabel ?? '?'}"`;
  if (config.keyring.kms.keys) return `the KMS at ${config.keyring.kms.endpoint ?? '?'}`;
  return config.keyring.masterKeys ? 'GATEHOUSE_MASTER_KEYS' : `the key file ${keyFilePathOf(config)}`;
}

/**
 * Before the keyring opens (which creates a missing key file): refuses to create a key file
 * for a database that already holds wrapped data keys, since a new key can never open them.
 */
export async function refuseNewKeyFileForExistingData(config: Config, db: Db): Promise<void> {
  if (config.keyring.masterKeys || config.keyring.kms.keys || config.keyring.pkcs11.module) return;
  const keyFile = keyFilePathOf(config);
  if (existsSync(keyFile)) return;
  const held = await wrappedDataKeys(db);
  if (held === 0) return;
  throw new CryptoError(
    'KEYRING_MISMATCH',
    `the database ${db.location} already holds data keys wrapped by key-encryption keys (at least ${held}), but there is no key file at ${keyFile}. ` +
      'A new key could not open them, so none was created. Copy the master-keys.json of the node that created this database to that path ' +
      '(or set GATEHOUSE_KEYRING_KEY_FILE to it), or set GATEHOUSE_MASTER_KEYS to the keys every node shares.',
  );
}

/** After the keyring opens: a key from another database surfaces here, named, instead of at the first sealed value. */
export async function assertKeyringOpensDatabase(config: Config, db: Db, keyring: Keyring): Promise<void> {
  try {
    await keyring.verifyKeks();
  } catch (err) {
    if (!(err instanceof CryptoError) || (err.code !== 'DECRYPT_FAILED' && err.code !== 'KEK_MISSING')) throw err;
    throw new CryptoError(
      'KEYRING_MISMATCH',
      `the key-encryption keys from ${whereKeksComeFrom(config)} do not open the data keys in the database ${db.location} (${err.code}): ` +
        'they belong to another database. Use the key file (or GATEHOUSE_MASTER_KEYS) of the nodes that created this database; ' +
        'a database whose keys are lost cannot be read.',
    );
  }
}
