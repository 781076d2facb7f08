/**
 * The manifest's own authentication (OPS-1). The age encryption authenticates a backup only
 * against someone without the recipients' identity: whoever holds it (an operator's restore key,
 * a stolen laptop) can decrypt, change data and manifest alike, and encrypt again. So the
 * manifest (manifest.json's exact bytes, which hold every file's sha256 and the backup id) is
 * also signed with a key only the deployment's key-encryption keys (KEKs) reach, and no backup
 * holds a KEK:
 *   - each backup gets a fresh 32-byte HMAC key, wrapped under the primary KEK (AES-256-GCM for a
 *     key file or GATEHOUSE_MASTER_KEYS; the KMS's own wrap for KEKs in a KMS), bound to the
 *     backup id; the outer manifest carries the wrapped key, the KEK version and the HMAC-SHA256;
 *   - a restore or verify unwraps it with the KEKs it restores with (the key export, the
 *     configured keys or the KMS) and refuses a missing or wrong signature before anything is
 *     committed (BACKUP_SIGNATURE_INVALID, naming why).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { primaryKek, type Kek, type KekSource } from '../crypto/kek-source.ts';
import type { RemoteKekSource } from '../crypto/kms-kek.ts';
import { keyFilePathOf, kekSourceFromConfig } from '../keyring/source.ts';
import { BackupError } from './errors.ts';

export const signatureSchema = z.object({
  alg: z.literal('HMAC-SHA256'),
  kekVersion: z.number().int().min(1),
  wrappedKey: z.string().min(1).max(2000),
  mac: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ManifestSignature = z.infer<typeof signatureSchema>;

/** The KEKs a signature is made or checked with: in memory (a key file, the environment, a key export) or in a KMS. */
export type SigningKeks = { local: readonly Kek[] } | { remote: RemoteKekSource };

const aadOf = (id: string): Buffer => Buffer.from(`gatehouse-backup-manifest:${id}`);

function wrapLocal(kek: Buffer, key: Buffer, aad: Buffer): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(key), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url');
}

function unwrapLocal(kek: Buffer, wrapped: string, aad: Buffer): Buffer {
  const raw = Buffer.from(wrapped, 'base64url');
  const d = createDecipheriv('aes-256-gcm', kek, raw.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([d.update(raw.subarray(28)), d.final()]);
}

const hmac = (key: Buffer, bytes: Buffer): string => createHmac('sha256', key).update(bytes).digest('hex');

/** The KEKs of the configuration: the KMS, GATEHOUSE_MASTER_KEYS, or the key file (never created here: absent is an error). */
export async function keksOfConfig(config: Config, options: { create?: boolean } = {}): Promise<SigningKeks> {
  const source: KekSource | RemoteKekSource = kekSourceFromConfig(config);
  if (!('load' in source)) return { remote: source };
  if (source.name === 'file' && !options.create && !existsSync(keyFilePathOf(config))) {
    throw new BackupError('BACKUP_KEYS_MISSING', 'the manifest signature is checked with the key-encryption keys: pass the key export (--keys) or configure the keys');
  }
  return { local: await source.load() };
}

/** Signs the manifest bytes of backup `id` under the primary KEK. */
export async function signManifest(keks: SigningKeks, id: string, manifest: Buffer): Promise<ManifestSignature> {
  const aad = aadOf(id);
  if ('remote' in keks) {
    const { version, key, wrapped } = await keks.remote.generateDek(aad);
    try {
      return { alg: 'HMAC-SHA256', kekVersion: version, wrappedKey: wrapped, mac: hmac(key, manifest) };
    } finally {
      key.fill(0);
    }
  }
  const kek = primaryKek(keks.local);
  const key = randomBytes(32);
  try {
    return { alg: 'HMAC-SHA256', kekVersion: kek.version, wrappedKey: wrapLocal(kek.key, key, aad), mac: hmac(key, manifest) };
  } finally {
    key.fill(0);
  }
}

/** Refuses a manifest without a signature, or whose signature does not verify under these KEKs. */
export async function verifyManifestSignature(keks: SigningKeks, id: string, signature: ManifestSignature | undefined, manifest: Buffer): Promise<void> {
  if (!signature) throw new BackupError('BACKUP_SIGNATURE_INVALID', `the manifest of ${id} is not signed`);
  let key: Buffer;
  try {
    if ('remote' in keks) key = await keks.remote.unwrap(signature.kekVersion, signature.wrappedKey, aadOf(id));
    else {
      const kek = keks.local.find((k) => k.version === signature.kekVersion);
      if (!kek) throw new BackupError('BACKUP_SIGNATURE_INVALID', `the manifest of ${id} is signed under key-encryption key version ${signature.kekVersion}, which the given keys do not hold`);
      key = unwrapLocal(kek.key, signature.wrappedKey, aadOf(id));
    }
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError('BACKUP_SIGNATURE_INVALID', `the manifest signature key of ${id} does not open under the key-encryption keys (another deployment's backup, or altered)`, { cause: err });
  }
  try {
    const ok = timingSafeEqual(Buffer.from(hmac(key, manifest), 'hex'), Buffer.from(signature.mac, 'hex'));
    if (!ok) throw new BackupError('BACKUP_SIGNATURE_INVALID', `the manifest of ${id} does not match its signature: it was changed after the backup was taken`);
  } finally {
    key.fill(0);
  }
}
