/**
 * Backups as a feature module: no route (backups run from the CLI, `gatehouse backup`, and as the
 * scheduled job `backup`); it adds the OPS-1 checks of src/backup/trust-check.ts to the trust
 * report.
 *
 * The job `backup` (schedule: backup.schedule, or jobs.schedules.backup) takes one backup of the
 * node's storage and prunes the destination to backup.retentionDays. It is declared only when a
 * destination is configured (backup.dir or backup.s3.bucket): without one there is nothing to
 * schedule, `gatehouse jobs run backup` and `POST /v1/cron/backup` answer that no such job exists.
 * It runs under the scheduler's cluster-wide lock, one node per scheduled time, in the job
 * history; on the embedded node in the node's own process, which holds the database.
 */
import { defineModule, hook, moduleRef, type JobDef } from '../server/module.ts';
import { TRUST, TRUST_CHECKS } from '../trust/index.ts';
import { runScheduledBackup } from './ops.ts';
import { backupAgeCheck, backupDrillCheck } from './trust-check.ts';
import { BACKUP_AUDIT_ACTIONS } from './audit-actions.ts';

export const BACKUP = moduleRef<undefined>('backup');

export const backupModule = defineModule({
  ref: BACKUP,
  dependsOn: [TRUST],
  auditActions: BACKUP_AUDIT_ACTIONS,
  create: (ctx) => {
    const configured = ctx.config.backup.dir !== undefined || ctx.config.backup.s3.bucket !== undefined;
    const job: JobDef = {
      name: 'backup',
      schedule: ctx.config.backup.schedule,
      summary: `Takes an encrypted backup of the storage to the configured destination, then removes backups older than backup.retentionDays (${ctx.config.backup.retentionDays}).`,
      run: async ({ now }) => {
        const r = await runScheduledBackup({ config: ctx.config, db: ctx.db, now: () => new Date(now()) });
        return { id: r.backup.outer.id, bytes: r.backup.outer.bytes, pruned: r.pruned.length };
      },
    };
    return { api: undefined, hooks: [hook(TRUST_CHECKS, backupAgeCheck), hook(TRUST_CHECKS, backupDrillCheck)], jobs: configured ? [job] : [] };
  },
});
