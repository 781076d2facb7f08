/**
 * Reading a backup back: the outer manifest first (size: BACKUP_TRUNCATED; hash:
 * BACKUP_TAMPERED), then the archive is decrypted and authenticated chunk by chunk, its header
 * checked before any data is handed on (format, storage, schema level), and every file's sha256
 * compared with the manifest at the end. `backup verify` and `restore` both read through here.
 */
import { createHash } from 'node:crypto';
import { loadMigrations } from '../store/migrate.ts';
import { decryptStream } from './age.ts';
import type { Destination } from './destination.ts';
import { BackupError } from './errors.ts';
import { assertSchemaKnown, headerSchema, manifestSchema, parseRecord, type BackupHeader, type BackupManifest, type OuterManifest } from './manifest.ts';
import { readTar, type TarEntryHeader } from './tar.ts';

export interface EntryHandler {
  /** Called once the header is read and checked, before any data entry. */
  begin(header: BackupHeader): Promise<void>;
  entry(h: TarEntryHeader): Promise<void>;
  data(chunk: Uint8Array): Promise<void>;
  end(h: TarEntryHeader): Promise<void>;
}

const MAX_RECORD = 64 * 1024 * 1024;

/** Reads and checks a whole backup, handing its data entries to `handler`. Returns its manifest. */
export async function readBackup(
  destination: Destination,
  id: string,
  identities: readonly string[],
  handler: EntryHandler,
  /** Checks manifest.json's exact bytes against the outer manifest's signature (signature.ts); throws to refuse. */
  verifyManifest: (raw: Buffer, outer: OuterManifest) => Promise<void>,
  onProgress?: (done: number, total: number) => void,
): Promise<{ outer: OuterManifest; manifest: BackupManifest }> {
  const { outer, bytes, read } = await destination.open(id);
  if (outer.id !== id) throw new BackupError('BACKUP_TAMPERED', `the manifest of ${id} names another backup (${outer.id})`);
  if (bytes < outer.bytes) throw new BackupError('BACKUP_TRUNCATED', `backup ${id} has ${bytes} bytes; its manifest records ${outer.bytes}`);
  if (bytes !== outer.bytes) throw new BackupError('BACKUP_TAMPERED', `backup ${id} has ${bytes} bytes; its manifest records ${outer.bytes}`);
  const known = (await loadMigrations()).map((m) => m.name);
  const outerHash = createHash('sha256');
  let done = 0;
  async function* hashed(): AsyncGenerator<Uint8Array> {
    for await (const chunk of read()) {
      outerHash.update(chunk);
      done += chunk.length;
      onProgress?.(done, bytes);
      yield chunk;
    }
  }
  let header: BackupHeader | undefined;
  let manifest: BackupManifest | undefined;
  let manifestRaw: Buffer | undefined;
  let record: { name: string; parts: Buffer[]; size: number } | undefined;
  const fileHashes = new Map<string, { size: number; sha256: string }>();
  let current: { name: string; hash: ReturnType<typeof createHash>; size: number } | undefined;
  await readTar(decryptStream(identities, hashed()), {
    async entry(h) {
      if (manifest) throw new BackupError('BACKUP_MALFORMED', 'the archive continues after its manifest');
      if (h.name === 'backup.json' || h.name === 'manifest.json') {
        if (h.size > MAX_RECORD) throw new BackupError('BACKUP_MALFORMED', `${h.name} is too large`);
        record = { name: h.name, parts: [], size: 0 };
        if (h.name === 'backup.json') current = { name: h.name, hash: createHash('sha256'), size: 0 };
        return;
      }
      if (!header) throw new BackupError('BACKUP_MALFORMED', 'the archive does not start with backup.json');
      if (h.type === 'file') current = { name: h.name, hash: createHash('sha256'), size: 0 };
      await handler.entry(h);
    },
    async data(chunk) {
      current?.hash.update(chunk);
      if (current) current.size += chunk.length;
      if (record) {
        record.parts.push(Buffer.from(chunk));
        return;
      }
      await handler.data(chunk);
    },
    async end(h) {
      if (current && h.type === 'file') fileHashes.set(current.name, { size: current.size, sha256: current.hash.digest('hex') });
      current = undefined;
      if (record) {
        const raw = Buffer.concat(record.parts);
        const text = raw.toString('utf8');
        record = undefined;
        if (h.name === 'backup.json') {
          header = parseRecord(headerSchema, text, 'backup.json');
          if (header.id !== id) throw new BackupError('BACKUP_TAMPERED', `the archive of ${id} holds backup ${header.id}`);
          assertSchemaKnown(header.migrations, known);
          await handler.begin(header);
        } else {
          manifest = parseRecord(manifestSchema, text, 'manifest.json');
          manifestRaw = raw;
        }
        return;
      }
      await handler.end(h);
    },
  });
  if (outerHash.digest('hex') !== outer.sha256) throw new BackupError('BACKUP_TAMPERED', `backup ${id} does not match the sha256 of its manifest`);
  if (!header || !manifest || !manifestRaw) throw new BackupError('BACKUP_MALFORMED', 'the archive has no manifest.json');
  await verifyManifest(manifestRaw, outer);
  if (manifest.id !== header.id || manifest.storage !== header.storage || manifest.migrations.join() !== header.migrations.join()) {
    throw new BackupError('BACKUP_MALFORMED', 'manifest.json disagrees with backup.json');
  }
  if (manifest.files.length !== fileHashes.size) throw new BackupError('BACKUP_MALFORMED', `the manifest lists ${manifest.files.length} files; the archive holds ${fileHashes.size}`);
  for (const f of manifest.files) {
    const seen = fileHashes.get(f.name);
    if (!seen || seen.sha256 !== f.sha256 || seen.size !== f.size) throw new BackupError('BACKUP_MALFORMED', `${f.name} does not match its manifest entry`);
  }
  return { outer, manifest };
}
