/**
 * The trust report's live checks of backups (OPS-1): the newest complete backup at the configured
 * destination and its age (listed now; older than two days, with a daily default schedule, is
 * `failed`; none at all is `failed`; no destination configured is `off`), and the restore drill.
 * `gatehouse backup drill` prints its RPO and RTO but records them nowhere a node can read, so the
 * drill is always `not verified`, saying so, rather than claimed.
 */
import type { TrustCheck } from '../trust/index.ts';
import { BackupError } from './errors.ts';
import { destinationFromConfig } from './destination.ts';
import { timeOfId } from './ops.ts';

/** A newest backup older than this is stale. */
export const STALE_BACKUP_MS = 2 * 86_400_000;

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
  run: async () => ({ state: 'not verified', evidence: [], why: 'the restore drill (gatehouse backup drill) prints its RPO and RTO but records them nowhere this node can read' }),
};
