/**
 * What a backup says about itself. Three records:
 * - `backup.json`, the archive's first entry: enough to refuse a backup before anything is
 *   written (archive format, storage kind, migration level);
 * - `manifest.json`, the archive's last entry: every file's size and sha256, row counts per table,
 *   audit log sizes and checkpoint keys. Both are inside the age encryption, so they are
 *   authenticated with the data (a changed byte fails the Poly1305 tag of its chunk) against
 *   anyone without the recipients' identity, and manifest.json is also signed under the KEKs
 *   (signature.ts) against anyone with it;
 * - `<id>.json` at the destination, written last (the completion marker): the encrypted file's
 *   size and sha256, for `backup list` and a check before decryption, and the manifest's
 *   signature. No row counts or names.
 */
import { z } from 'zod';
import { BackupError } from './errors.ts';
import { signatureSchema } from './signature.ts';

/** The archive format this build writes and the newest it reads. */
export const ARCHIVE_FORMAT = 1;

/** Backup ids: UTC time plus a random suffix, so they sort by time and never collide. */
export const BACKUP_ID_RE = /^gh-\d{8}T\d{6}Z-[0-9a-f]{8}$/;

const storageKind = z.enum(['pglite', 'postgres']);

export const headerSchema = z.object({
  format: z.number().int().min(1),
  id: z.string().regex(BACKUP_ID_RE),
  createdAt: z.string(),
  storage: storageKind,
  gatehouseVersion: z.string(),
  migrations: z.array(z.string()),
  serverVersion: z.string(),
});
export type BackupHeader = z.infer<typeof headerSchema>;

const jwk = z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string() });

export const manifestSchema = headerSchema.extend({
  finishedAt: z.string(),
  files: z.array(z.object({ name: z.string(), size: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
  tables: z.record(z.string(), z.number().int().min(0)),
  audit: z.record(z.string(), z.object({ size: z.number().int().min(0) })),
  auditKeys: z.array(jwk),
  /** Tenants whose data keys were all destroyed (crypto-shredded) when the backup was taken. */
  shreddedTenants: z.array(z.string()),
});
export type BackupManifest = z.infer<typeof manifestSchema>;

export const outerSchema = z.object({
  format: z.number().int().min(1),
  id: z.string().regex(BACKUP_ID_RE),
  createdAt: z.string(),
  storage: storageKind,
  gatehouseVersion: z.string(),
  migrationLevel: z.string(),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  recipients: z.array(z.string()),
  /** HMAC of manifest.json's bytes under a key wrapped by the KEK (signature.ts); optional here so that its absence is refused by name. */
  manifestSignature: signatureSchema.optional(),
});
export type OuterManifest = z.infer<typeof outerSchema>;

/** Parses one of the records, refusing a newer format by name. */
export function parseRecord<S extends z.ZodType>(schema: S, text: string, what: string): z.infer<S> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new BackupError('BACKUP_MALFORMED', `${what} is not JSON`);
  }
  const format = (data as { format?: unknown } | null)?.format;
  if (typeof format === 'number' && format > ARCHIVE_FORMAT) {
    throw new BackupError('BACKUP_FORMAT_NEWER', `${what} has archive format ${format}; this Gatehouse reads up to ${ARCHIVE_FORMAT}`);
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new BackupError('BACKUP_MALFORMED', `${what} is not valid: ${parsed.error.issues[0]?.path.join('.') ?? ''}`);
  return parsed.data;
}

/** Refuses a backup holding migrations this build does not have (it would start on a schema it does not know). */
export function assertSchemaKnown(backupMigrations: readonly string[], known: readonly string[]): void {
  const mine = new Set(known);
  const unknown = backupMigrations.filter((m) => !mine.has(m));
  if (unknown.length > 0) {
    throw new BackupError('BACKUP_SCHEMA_NEWER', `the backup was taken at a newer schema: ${unknown.length} migration(s) unknown here, first ${unknown[0] ?? ''}`);
  }
}

/** A new backup id for the given time. */
export function newBackupId(now: Date, random: string): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `gh-${t}-${random}`;
}
