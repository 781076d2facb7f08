/**
 * Scheduled jobs (EDGE-7) as a module: the in-process scheduler over every job the modules
 * declare (read lazily through ctx.jobs(), complete once every module exists), the cron endpoint,
 * and its own maintenance job (history retention).
 */
import { randomBytes } from 'node:crypto';
import { defineModule, hook, moduleRef, type JobDef } from '../server/module.ts';
import { TRUST, TRUST_CHECKS } from '../trust/index.ts';
import { createJobsFeature } from './routes.ts';
import { createScheduler, type Scheduler } from './scheduler.ts';
import { jobsTrustCheck } from './trust-check.ts';

export type { JobInfo, RunResult, Scheduler, HistoryRow } from './scheduler.ts';
export { UnknownJobError } from './scheduler.ts';

export const JOBS = moduleRef<Scheduler>('jobs');

/** This process's name in the job history: the host name and a random suffix. */
function nodeName(): string {
  return `${process.env.HOSTNAME ?? 'node'}-${randomBytes(3).toString('hex')}`;
}

export const jobsModule = defineModule({
  ref: JOBS,
  dependsOn: [TRUST],
  create: (ctx) => {
    const settings = ctx.config.jobs;
    const scheduler = createScheduler({ db: ctx.db, logger: ctx.logger, now: ctx.now, jobs: ctx.jobs, settings, nodeId: (ctx.overrides.nodeId as string | undefined) ?? nodeName() });
    const pruneHistory: JobDef = {
      name: 'jobs.prune-history',
      schedule: '17 3 * * *',
      summary: `Removes job history rows older than jobs.historyDays (${settings.historyDays}).`,
      run: async ({ now }) => {
        const cutoff = new Date(now() - settings.historyDays * 86_400_000);
        const removed = await ctx.db.query("delete from job_runs where started_at < $1 and outcome <> 'running'", [cutoff]);
        return { removed: removed.rowCount };
      },
    };
    // The timers start once the server is built: every module's jobs are declared by then.
    let started = false;
    return {
      api: scheduler,
      feature: createJobsFeature(scheduler),
      metrics: scheduler.metrics,
      jobs: [pruneHistory],
      hooks: [hook(TRUST_CHECKS, jobsTrustCheck)],
      onServer: () => {
        if (started) return;
        started = true;
        scheduler.start();
      },
      stop: () => scheduler.stop(),
      close: () => scheduler.stop(),
    };
  },
});
