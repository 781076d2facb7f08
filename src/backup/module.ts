/**
 * Backups as a feature module: no route (backups run from the CLI, `gatehouse backup`); it adds
 * the OPS-1 checks of src/backup/trust-check.ts to the trust report.
 */
import { defineModule, hook, moduleRef } from '../server/module.ts';
import { TRUST, TRUST_CHECKS } from '../trust/index.ts';
import { backupAgeCheck, backupDrillCheck } from './trust-check.ts';
import { BACKUP_AUDIT_ACTIONS } from './audit-actions.ts';

export const BACKUP = moduleRef<undefined>('backup');

export const backupModule = defineModule({
  ref: BACKUP,
  dependsOn: [TRUST],
  auditActions: BACKUP_AUDIT_ACTIONS,
  create: () => ({ api: undefined, hooks: [hook(TRUST_CHECKS, backupAgeCheck), hook(TRUST_CHECKS, backupDrillCheck)] }),
});
