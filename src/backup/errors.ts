/**
 * The one error type of backups and restores. Callers and the CLI branch on `code`, never on the
 * message; messages name what failed (a backup id, a table, a file) and never carry key material.
 */

export const BACKUP_ERROR_CODES = {
  BACKUP_NOT_CONFIGURED: 'No backup destination or no recipients are configured (backup.dir or backup.s3, backup.recipients).',
  BACKUP_DESTINATION_INSIDE_DATA_DIR: 'The backup destination is inside the data directory: a lost disk would take the backups with it.',
  BACKUP_NOT_FOUND: 'No backup with this id at the destination.',
  BACKUP_INCOMPLETE: 'The backup has no completion manifest: it was cut off while being written and is not a backup.',
  BACKUP_TRUNCATED: 'The backup file is shorter than its manifest records.',
  BACKUP_TAMPERED: 'The backup file does not match its manifest hash, or its encrypted content failed authentication.',
  BACKUP_WRONG_KEY: 'None of the configured identities can decrypt the backup (backup.identityFile).',
  BACKUP_MALFORMED: 'The decrypted archive is not a Gatehouse backup (bad tar, missing or invalid manifest, a file whose hash differs).',
  BACKUP_FORMAT_NEWER: 'The backup was written in a newer archive format than this Gatehouse reads.',
  BACKUP_SCHEMA_NEWER: 'The backup holds migrations this Gatehouse does not know: restore it with the same or a newer version.',
  BACKUP_STORAGE_MISMATCH: 'An embedded backup restores into a data directory, a PostgreSQL backup into a database.',
  BACKUP_TARGET_NOT_EMPTY: 'The restore target (data directory or database) already holds data; restore only into an empty one.',
  BACKUP_TOOL_FAILED: 'pg_dump or pg_restore failed (its exit status and last error lines are in the message).',
  BACKUP_VERIFY_FAILED: 'The restored data differs from the manifest (row counts, migrations, audit logs or row-level security).',
  BACKUP_KEYS_MISSING: 'The restored data needs key-encryption keys: pass the file of `gatehouse keys export` (--keys) or configure them.',
  BACKUP_KEKS_IN_KMS: 'The key-encryption keys stay in a KMS (keyring.kms): they cannot be exported; the KMS keeps them (back them up there).',
  BACKUP_SIGNATURE_INVALID: 'The backup manifest is not signed, or its signature does not verify under the key-encryption keys: it was changed after the backup was taken (re-encrypted by someone holding the recipient key) or belongs to another deployment.',
  BACKUP_WRITE_FAILED: 'Writing to the destination failed; nothing was left that looks like a complete backup.',
} as const;

export type BackupErrorCode = keyof typeof BACKUP_ERROR_CODES;

/** A refusal of the backup feature, with a stable code. */
export class BackupError extends Error {
  override name = 'BackupError';
  readonly code: BackupErrorCode;
  constructor(code: BackupErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
