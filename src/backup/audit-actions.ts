/**
 * The audit action of backups (AUDIT-1), in the platform log: the backup drill's marker writes
 * (OPS-1), which the restored copy is searched for to measure the RPO.
 */
export const BACKUP_AUDIT_ACTIONS = [
  'backup.drill_marker',
] as const;
