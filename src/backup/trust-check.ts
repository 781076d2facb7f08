/**
 * The trust report's live checks of backups (OPS-1): the newest complete backup at the configured
 * destination and its age (listed now; older than two days, with a daily default schedule, is
 * `failed`; none at all is `failed`; no destination configured is `off`), and the last restore
 * drill as `gatehouse backup drill` recorded it in backup_drills: when, its outcome, RPO and RTO
 * (none recorded: `not verified`; the last one failed or older than STALE_DRILL_MS: `failed`).
 */
import type { TrustCheck } from '../trust/index.ts';
import { BackupError } from './errors.ts';
import { destinationFromConfig } from './destination.ts';
import { lastDrill } from './drills.ts';
import { timeOfId } from './ops.ts';

/** A newest backup older than this is stale. */
export const STALE_BACKUP_MS = 2 * 86_400_000;

/** A last drill older than this is stale: run the drill at least monthly. */
export const STALE_DRILL_MS = 31 * 86_400_000;

const hours = (ms: number): string => `${(ms / 3_600_000).toFixed(1)} h`;

export const backupAgeCheck: TrustCheck = {
  control: 'OPS-1',
  name: 'backup-age',
  run: async (ctx) => {
    let destination;
    try {
      destination = destinationFromConfig(ctx.config);
    } catch (err) {
      if (err instanceof BackupError && err.code === 'BACKUP_NOT_CONFIGURED') return { state: 'off', evidence: ['no backup destination configured'], why: 'backup.dir and backup.s3.bucket are unset' };
      throw err;
    }
    const listed = await destination.list().catch(() => null);
    if (!listed) return { state: 'failed', evidence: [`destination ${destination.describe} could not be listed`], why: 'the backup destination is unreachable' };
    const times = listed.filter((b) => b.outer).map((b) => timeOfId(b.id)).filter((t) => Number.isFinite(t));
    if (times.length === 0) return { state: 'failed', evidence: [`destination ${destination.describe}: no complete backup`], why: 'no complete backup exists' };
    const ageMs = ctx.now() - Math.max(...times);
    const evidence = [`destination ${destination.describe}: ${times.length} complete backup(s), the newest ${(ageMs / 3_600_000).toFixed(1)} h old`];
    if (ageMs > STALE_BACKUP_MS) return { state: 'failed', evidence, why: `the newest backup is older than ${STALE_BACKUP_MS / 86_400_000} days` };
    return { state: 'active', evidence };
  },
};

export const backupDrillCheck: TrustCheck = {
  control: 'OPS-1',
  name: 'restore-drill',
  run: async (ctx) => {
    const last = await ctx.db.asOwner((tx) => lastDrill(tx));
    if (!last) return { state: 'not verified', evidence: ['no restore drill recorded'], why: 'no restore drill has run on this storage (gatehouse backup drill)' };
    const ageMs = ctx.now() - last.finishedAt.getTime();
    const at = `last drill ${last.finishedAt.toISOString()} (${hours(ageMs)} ago)`;
    if (last.outcome === 'failed') return { state: 'failed', evidence: [`${at}: failed (${last.error ?? 'error'})`], why: 'the last restore drill failed' };
    const evidence = [`${at}: succeeded, backup ${last.backupId ?? '-'}, RPO ${((last.rpoMs ?? 0) / 1000).toFixed(3)} s (${last.writesLost ?? 0} write(s) lost), RTO ${((last.rtoMs ?? 0) / 1000).toFixed(3)} s`];
    if (ageMs > STALE_DRILL_MS) return { state: 'failed', evidence, why: `the last restore drill is older than ${STALE_DRILL_MS / 86_400_000} days` };
    return { state: 'active', evidence };
  },
};
