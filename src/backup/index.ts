/**
 * Encrypted backups, verified restores and the restore drill (OPS-1). The public surface of the
 * feature: the CLI (src/cli/backup.ts) and a job scheduler use only what is exported here.
 */
export { BackupError, BACKUP_ERROR_CODES, type BackupErrorCode } from './errors.ts';
export { createBackup, type BackupOptions, type BackupResult } from './backup.ts';
export { restoreBackup, targetConfig, identitiesOf, type RestoreOptions, type RestoreResult, type RestoreTarget } from './restore.ts';
export { listBackups, verifyBackup, pruneBackups, runScheduledBackup, timeOfId } from './ops.ts';
export { destinationFromConfig, createDirDestination, type Destination, type ListedBackup } from './destination.ts';
export { exportKeks, installExportedKeks } from './keys.ts';
export { readIdentityFile, RECIPIENT_RE } from './age.ts';
export { RESTORE_MARKER } from './embedded.ts';
export type { BackupManifest, OuterManifest } from './manifest.ts';
export type { RestoreReport } from './verify-restored.ts';
export { recordDrill, lastDrill, drillErrorLabel, type DrillRecord, type LastDrill } from './drills.ts';
export { BACKUP, backupModule } from './module.ts';
