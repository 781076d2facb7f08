/**
 * The restore drill's record (OPS-1): each `gatehouse backup drill` writes one row into the
 * storage it drilled (backup_drills), succeeded with its RPO and RTO, or failed with an error
 * code; the trust report reads the newest.
 */
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../store/index.ts';

export interface DrillRecord {
  startedAt: Date;
  finishedAt: Date;
  backupId: string | null;
  outcome: 'succeeded' | 'failed';
  rpoMs?: number;
  rtoMs?: number;
  writesAcknowledged?: number;
  writesLost?: number;
  /** The error's class and code, never its message. */
  error?: string;
}

/** An error class and code: never the message, which may carry data. */
export function drillErrorLabel(err: unknown): string {
  if (!(err instanceof Error)) return 'Error';
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? `${err.name}:${code}` : err.name;
}

export async function recordDrill(db: Queryable, r: DrillRecord): Promise<void> {
  await db.query(
    `insert into backup_drills (id, started_at, finished_at, backup_id, outcome, rpo_ms, rto_ms, writes_acknowledged, writes_lost, error)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [randomUUID(), r.startedAt, r.finishedAt, r.backupId, r.outcome, r.rpoMs ?? null, r.rtoMs ?? null, r.writesAcknowledged ?? null, r.writesLost ?? null, r.error ?? null],
  );
}

export interface LastDrill {
  finishedAt: Date;
  backupId: string | null;
  outcome: 'succeeded' | 'failed';
  rpoMs: number | null;
  rtoMs: number | null;
  writesLost: number | null;
  error: string | null;
}

export async function lastDrill(db: Queryable): Promise<LastDrill | null> {
  const { rows } = await db.query<{ finished_at: Date; backup_id: string | null; outcome: 'succeeded' | 'failed'; rpo_ms: number | null; rto_ms: number | null; writes_lost: number | null; error: string | null }>(
    'select finished_at, backup_id, outcome, rpo_ms, rto_ms, writes_lost, error from backup_drills order by finished_at desc limit 1',
  );
  const r = rows[0];
  return r ? { finishedAt: new Date(r.finished_at), backupId: r.backup_id, outcome: r.outcome, rpoMs: r.rpo_ms, rtoMs: r.rto_ms, writesLost: r.writes_lost, error: r.error } : null;
}
