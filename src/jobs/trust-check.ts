/**
 * The trust report's live check of scheduled jobs (EDGE-7): the outcome of each job's last run
 * (from the job history, every node's) and runs still `running` far longer than any job should
 * take: a leader that died without releasing them (its lock went with its connection; the row
 * stays until the next run marks it abandoned). A last run that failed or a stale leader: `failed`.
 * The scheduler switched off on this node (jobs.enabled=false): `off`.
 */
import type { TrustCheck } from '../trust/index.ts';

/** A run older than this and still `running` belongs to a dead leader. */
export const STALE_RUN_MS = 6 * 3_600_000;

export const jobsTrustCheck: TrustCheck = {
  control: 'EDGE-7',
  name: 'job-runs',
  run: async (ctx) => {
    const at = new Date(ctx.now());
    const last = await ctx.db.asOwner((tx) => tx.query<{ job: string; outcome: string; started_at: Date }>('select distinct on (job) job, outcome, started_at from job_runs order by job, started_at desc'));
    const stale = await ctx.db.asOwner((tx) => tx.query<{ job: string; node: string }>("select job, node from job_runs where outcome = 'running' and started_at < $1 order by job", [new Date(at.getTime() - STALE_RUN_MS)]));
    const evidence = [last.rows.length === 0 ? 'no job has run yet' : `last runs: ${last.rows.map((r) => `${r.job} ${r.outcome}`).join(', ')}`];
    const failed = last.rows.filter((r) => r.outcome === 'failed' || r.outcome === 'abandoned').map((r) => r.job);
    if (stale.rows.length > 0) return { state: 'failed', evidence: [...evidence, `stale leader: ${stale.rows.map((r) => `${r.job} on ${r.node}`).join(', ')} running for more than ${STALE_RUN_MS / 3_600_000} h`], why: 'a job run was left running by a leader that is gone' };
    if (failed.length > 0) return { state: 'failed', evidence, why: `the last run of ${failed.join(', ')} did not succeed` };
    if (!ctx.config.jobs.enabled) return { state: 'off', evidence, why: 'jobs.enabled is false: this node runs no scheduled job' };
    return { state: 'active', evidence };
  },
};
