/** The `backup` section of the configuration (OPS-1): where encrypted backups go and who can open them. */
import { z } from 'zod';
import { opt } from './option-meta.ts';
import { httpUrlSchema } from './url.ts';

const recipient = z.string().regex(/^age1[02-9ac-hj-np-z]{58}$/, 'must be an X25519 age recipient (age1...)');

export const backupSection = z
  .strictObject({
    dir: opt(z.string().min(1).optional(), {
      doc: 'Directory (local or mounted) that receives backups. Refused inside storage.dataDir. Unset with s3 unset: backups are not configured.',
    }),
    recipients: opt(z.array(recipient).default([]), {
      doc: 'age X25519 public keys (age1...) every backup and key export is encrypted to. Keep the matching identities off the node (`age-keygen`).',
    }),
    identityFile: opt(z.string().min(1).optional(), {
      doc: 'age identity file (AGE-SECRET-KEY-1... lines, mode 0600) used by `backup verify`, `restore` and `backup drill` to decrypt. Only needed where restores run.',
    }),
    retentionDays: opt(z.number().int().min(1).max(3650).default(30), {
      doc: 'Backups older than this are removed by `gatehouse backup prune` (and the scheduled job); the newest complete backup is always kept.',
    }),
    schedule: opt(z.string().min(1).default('0 3 * * *'), {
      doc: 'Cron expression (UTC) of the scheduled job `backup` (a backup, then pruning to retentionDays); the job exists only when backup.dir or backup.s3.bucket is set. jobs.schedules.backup overrides it.',
    }),
    s3: z
      .strictObject({
        endpoint: opt(httpUrlSchema().optional(), { doc: 'S3-compatible endpoint URL. Unset: AWS S3 of backup.s3.region.' }),
        bucket: opt(z.string().min(3).max(63).optional(), { doc: 'Bucket that receives backups. Setting it selects the S3 destination.' }),
        prefix: opt(z.string().max(200).regex(/^[A-Za-z0-9/_.-]*$/, 'letters, digits, "/", "_", "." or "-"').default('gatehouse/'), { doc: 'Key prefix of backup objects.' }),
        region: opt(z.string().min(1).default('us-east-1'), { doc: 'S3 region.' }),
        forcePathStyle: opt(z.boolean().default(true), { doc: 'Path-style URLs (bucket in the path), as most S3-compatible servers need.' }),
        accessKeyId: opt(z.string().min(1).optional(), { doc: 'S3 access key id.', secret: true }),
        secretAccessKey: opt(z.string().min(1).optional(), { doc: 'S3 secret access key.', secret: true }),
      })
      .prefault({}),
  })
  .prefault({});

export type BackupConfig = z.infer<typeof backupSection>;
