/**
 * Keys and data apart (OPS-1). A data backup holds the data keys only wrapped, never a
 * key-encryption key (KEK): master-keys.json is not part of any backup. The operator exports the
 * KEKs separately, encrypted to an age recipient (`gatehouse keys export`), and a restore gets them
 * back from that file (`gatehouse restore --keys`), or from GATEHOUSE_MASTER_KEYS.
 * The export is the key file's own format, so `age -d` gives a usable master-keys.json.
 */
import { existsSync } from 'node:fs';
import { link, open, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { KekSource } from '../crypto/kek-source.ts';
import type { RemoteKekSource } from '../crypto/kms-kek.ts';
import { createFileKekSource, type Kek } from '../crypto/kek-source.ts';
import { decryptStream, encryptStream } from './age.ts';
import { BackupError } from './errors.ts';

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}

/** Every KEK version of the source, as an age file (binary) for the recipients. */
export async function exportKeks(source: KekSource | RemoteKekSource, recipients: readonly string[]): Promise<{ file: Buffer; versions: number[] }> {
  // KEKs in a KMS never leave it: there is nothing a node could export.
  if (!('load' in source)) throw new BackupError('BACKUP_KEKS_IN_KMS', `the key-encryption keys are in ${source.name}; they cannot be exported`);
  const keks = await source.load();
  const text = JSON.stringify({ format: 1, keys: keks.map((k) => ({ version: k.version, key: k.key.toString('base64url') })) }, null, 2) + '\n';
  const encrypted = await encryptStream(recipients, once(Buffer.from(text)));
  return { file: await collect(encrypted), versions: keks.map((k) => k.version) };
}

/** The KEKs of a key export, in memory (to check a manifest signature before anything is installed). */
export async function readExportedKeks(exportFile: string, identities: readonly string[]): Promise<Kek[]> {
  let plain: Buffer;
  try {
    plain = await collect(decryptStream(identities, once(await readFile(exportFile))));
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError('BACKUP_KEYS_MISSING', `cannot read the key export ${exportFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const parsed = JSON.parse(plain.toString('utf8')) as { keys?: { version?: unknown; key?: unknown }[] };
    const keks = (parsed.keys ?? []).map((k) => ({ version: Number(k.version), key: Buffer.from(String(k.key), 'base64url') }));
    if (keks.length === 0 || keks.some((k) => !Number.isInteger(k.version) || k.version < 1 || k.key.length !== 32)) throw new Error('bad key list');
    return keks;
  } catch {
    throw new BackupError('BACKUP_KEYS_MISSING', `the key export ${exportFile} is not a valid key file`);
  } finally {
    plain.fill(0);
  }
}

/**
 * Installs an exported key file at `keyFile` (created 0600, never over an existing file), after
 * decrypting it with the identities and checking it is a valid key file. Returns the versions.
 */
export async function installExportedKeks(exportFile: string, identities: readonly string[], keyFile: string): Promise<number[]> {
  let plain: Buffer;
  try {
    plain = await collect(decryptStream(identities, once(await readFile(exportFile))));
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError('BACKUP_KEYS_MISSING', `cannot read the key export ${exportFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (existsSync(keyFile)) throw new BackupError('BACKUP_TARGET_NOT_EMPTY', `a key file already exists at ${keyFile}; the restore does not replace it`);
  // Checked in a private temporary file of the same directory, then linked into place (never overwrites).
  const tmp = join(dirname(keyFile), `.keys-import-${process.pid}.json`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(plain);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    const keks = await createFileKekSource(tmp).load();
    await link(tmp, keyFile);
    return keks.map((k) => k.version);
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError('BACKUP_KEYS_MISSING', `the key export ${exportFile} is not a valid key file (${(err as { code?: string }).code ?? 'error'})`);
  } finally {
    await rm(tmp, { force: true });
  }
}
