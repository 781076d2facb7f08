/**
 * The in-process scheduler (EDGE-7): runs every job the feature modules declare (JobDef in
 * src/server/module.ts) on its cron schedule (UTC; `jobs.schedules` overrides a job's default),
 * on one node of the cluster per scheduled time, and records each run in `job_runs`.
 *
 * - One run at a time per job, cluster-wide: the job lock (lock.ts). A run that finds the lock
 *   held is not started: `busy` (the cron endpoint answers 409 JOB_RUNNING).
 * - One run per scheduled time: the scheduled run's history row is unique on (job, time); the
 *   second node to insert it skips.
 * - A row still `running` when a run takes the lock was left by a node that died: `abandoned`.
 */
import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Metric } from 'prom-client';
import type { JobDef } from '../server/module.ts';
import type { Db } from '../store/db-types.ts';
import { createJobLock, type JobLock } from './lock.ts';

export type JobTrigger = 'schedule' | 'endpoint' | 'cli';

export type RunResult =
  | { status: 'succeeded'; runId: string; durationMs: number; summary: Record<string, unknown> | null }
  | { status: 'failed'; runId: string; durationMs: number; error: string }
  /** Another run of the job holds its lock (on this node or another). */
  | { status: 'busy' }
  /** A scheduled run another node already made for this scheduled time. */
  | { status: 'skipped' };

export interface JobInfo {
  name: string;
  summary: string;
  schedule: string;
  /** Whether this node's scheduler starts it (false when jobs are off or it is in `jobs.disabled`). */
  scheduled: boolean;
  nextRun: string | null;
  lastRun: { outcome: string; startedAt: string; durationMs: number | null; node: string } | null;
}

export interface HistoryRow {
  id: string;
  job: string;
  trigger: JobTrigger;
  node: string;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  outcome: 'running' | 'succeeded' | 'failed' | 'abandoned';
  summary: Record<string, unknown> | null;
  error: string | null;
}

export interface SchedulerSettings {
  enabled: boolean;
  schedules: Readonly<Record<string, string>>;
  disabled: readonly string[];
}

export interface SchedulerDeps {
  db: Db;
  logger: Logger;
  now: () => number;
  /** Every job of every module, read once at start (ModuleContext.jobs, complete by then). */
  jobs: () => readonly JobDef[];
  settings: SchedulerSettings;
  nodeId: string;
  lock?: JobLock;
}

/** An error class and code for the history: never the message, which may carry data. */
function errorLabel(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? `${err.name}:${code}` : err.name;
  }
  return 'Error';
}

/** What one run needs: the store, this node, its lock, the stop signal and the metrics. */
interface RunContext {
  db: Db;
  logger: Logger;
  now: () => number;
  nodeId: string;
  lock: JobLock;
  signal: AbortSignal;
  metrics: { runs: Counter<'job' | 'outcome'>; duration: Histogram<'job'>; lastSuccess: Gauge<'job'> };
}

/** One run of a job under its lock, recorded in the history; `busy` when the lock is held elsewhere. */
async function execute(ctx: RunContext, job: JobDef, trigger: JobTrigger, scheduledFor: Date | null): Promise<RunResult> {
  const { db, logger, now, nodeId, lock } = ctx;
  const { runs, duration, lastSuccess } = ctx.metrics;
  const outcome = await lock.withLock(job.name, async (): Promise<RunResult> => {
    // Holding the lock: a row still running was left by a node that died mid-run.
    await db.query("update job_runs set outcome = 'abandoned', finished_at = $2 where job = $1 and outcome = 'running'", [job.name, new Date(now())]);
    const runId = randomUUID();
    const inserted = await db.query(
      `insert into job_runs (id, job, trigger, scheduled_for, node, started_at) values ($1, $2, $3, $4, $5, $6)
       on conflict (job, scheduled_for) where scheduled_for is not null do nothing`,
      [runId, job.name, trigger, scheduledFor, nodeId, new Date(now())],
    );
    if (inserted.rowCount === 0) return { status: 'skipped' };
    const started = performance.now();
    try {
      const summary = (await job.run({ signal: ctx.signal, now })) ?? null;
      const ms = Math.round(performance.now() - started);
      await db.query("update job_runs set outcome = 'succeeded', finished_at = $2, duration_ms = $3, summary = $4 where id = $1 and outcome = 'running'", [runId, new Date(now()), ms, summary === null ? null : JSON.stringify(summary)]);
      lastSuccess.set({ job: job.name }, Math.floor(now() / 1000));
      duration.observe({ job: job.name }, ms / 1000);
      return { status: 'succeeded', runId, durationMs: ms, summary };
    } catch (err) {
      const ms = Math.round(performance.now() - started);
      const label = errorLabel(err);
      logger.error({ err, job: job.name, runId }, 'job failed');
      await db.query("update job_runs set outcome = 'failed', finished_at = $2, duration_ms = $3, error = $4 where id = $1 and outcome = 'running'", [runId, new Date(now()), ms, label]);
      duration.observe({ job: job.name }, ms / 1000);
      return { status: 'failed', runId, durationMs: ms, error: label };
    }
  });
  const result: RunResult = outcome.acquired ? outcome.value : { status: 'busy' };
  runs.inc({ job: job.name, outcome: result.status });
  return result;
}

/** Every job with its effective schedule, next run and last recorded run. */
async function listJobs(db: Db, now: () => number, jobs: readonly JobDef[], settings: SchedulerSettings): Promise<JobInfo[]> {
  const { rows } = await db.query<{ job: string; outcome: string; started_at: Date; duration_ms: number | null; node: string }>(
    'select distinct on (job) job, outcome, started_at, duration_ms, node from job_runs order by job, started_at desc',
  );
  const last = new Map(rows.map((r) => [r.job, r]));
  return jobs.map((job) => {
    const schedule = settings.schedules[job.name] ?? job.schedule;
    const r = last.get(job.name);
    const next = new Cron(schedule, { timezone: 'UTC', paused: true }).nextRun(new Date(now()));
    return {
      name: job.name,
      summary: job.summary,
      schedule,
      scheduled: settings.enabled && !settings.disabled.includes(job.name),
      nextRun: next ? next.toISOString() : null,
      lastRun: r ? { outcome: r.outcome, startedAt: new Date(r.started_at).toISOString(), durationMs: r.duration_ms, node: r.node } : null,
    };
  });
}

/** The most recent runs of a job (or of every job), newest first. */
async function readHistory(db: Db, options: { job?: string; limit: number }): Promise<HistoryRow[]> {
  const { rows } = await db.query<{ id: string; job: string; trigger: JobTrigger; node: string; started_at: Date; finished_at: Date | null; duration_ms: number | null; outcome: HistoryRow['outcome']; summary: Record<string, unknown> | null; error: string | null }>(
    'select id, job, trigger, node, started_at, finished_at, duration_ms, outcome, summary, error from job_runs where ($1::text is null or job = $1) order by started_at desc limit $2',
    [options.job ?? null, options.limit],
  );
  return rows.map((r) => ({
    id: r.id,
    job: r.job,
    trigger: r.trigger,
    node: r.node,
    startedAt: new Date(r.started_at).toISOString(),
    finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
    durationMs: r.duration_ms,
    outcome: r.outcome,
    summary: r.summary,
    error: r.error,
  }));
}

export function createScheduler(deps: SchedulerDeps) {
  const { db, logger, now, settings, nodeId } = deps;
  const lock = deps.lock ?? createJobLock(db);
  const controller = new AbortController();
  const timers: Cron[] = [];
  const running = new Set<Promise<unknown>>();
  let stopped = false;

  const runs = new Counter({ name: 'gatehouse_job_runs_total', help: 'Job runs by job and outcome (succeeded, failed, busy, skipped).', labelNames: ['job', 'outcome'] as const, registers: [] });
  const duration = new Histogram({ name: 'gatehouse_job_duration_seconds', help: 'Duration of job runs.', labelNames: ['job'] as const, buckets: [0.01, 0.1, 0.5, 1, 5, 30, 120, 600], registers: [] });
  const lastSuccess = new Gauge({ name: 'gatehouse_job_last_success_timestamp_seconds', help: 'When each job last succeeded on this node (Unix time).', labelNames: ['job'] as const, registers: [] });
  const metrics: Metric[] = [runs, duration, lastSuccess];
  const ctx: RunContext = { db, logger, now, nodeId, lock, signal: controller.signal, metrics: { runs, duration, lastSuccess } };

  const byName = (): Map<string, JobDef> => new Map(deps.jobs().map((j) => [j.name, j]));
  const scheduleOf = (job: JobDef): string => settings.schedules[job.name] ?? job.schedule;

  /** Refuses a configured schedule for a job nobody declares: a typo would otherwise be silent. */
  function assertConfigured(): void {
    const names = byName();
    for (const name of [...Object.keys(settings.schedules), ...settings.disabled]) {
      if (!names.has(name)) throw new Error(`jobs: no job is named "${name}" (known: ${[...names.keys()].sort().join(', ')})`);
    }
  }

  /** Tracks a run so `stop` can wait for it. */
  function track<T>(p: Promise<T>): Promise<T> {
    running.add(p);
    void p.finally(() => running.delete(p)).catch(() => undefined);
    return p;
  }

  return {
    metrics,

    /** Starts this node's timers (when `jobs.enabled`). Call once every module exists. */
    start(): void {
      assertConfigured();
      if (!settings.enabled || stopped) return;
      for (const job of deps.jobs()) {
        if (settings.disabled.includes(job.name)) continue;
        const timer = new Cron(scheduleOf(job), { timezone: 'UTC', unref: true, protect: true }, (self: Cron) => {
          const at = self.currentRun() ?? new Date(now());
          // Whole seconds: every node names the same scheduled time, whatever its timer's drift.
          const scheduledFor = new Date(Math.floor(at.getTime() / 1000) * 1000);
          return track(execute(ctx, job, 'schedule', scheduledFor)).then(
            () => undefined,
            (err: unknown) => logger.error({ err, job: job.name }, 'scheduled job could not run'),
          );
        });
        timers.push(timer);
      }
    },

    /**
     * Runs `name` now (the cron endpoint, the CLI, tests), or as the run scheduled for
     * `scheduledFor`. Throws UnknownJobError for a name no module declares.
     */
    async run(name: string, trigger: JobTrigger, scheduledFor?: Date): Promise<RunResult> {
      const job = byName().get(name);
      if (!job) throw new UnknownJobError(name);
      if (stopped) return { status: 'busy' };
      return track(execute(ctx, job, trigger, scheduledFor ?? (trigger === 'schedule' ? new Date(Math.floor(now() / 1000) * 1000) : null)));
    },

    has(name: string): boolean {
      return byName().has(name);
    },

    /** Every job with its effective schedule, next run and last recorded run. */
    list: (): Promise<JobInfo[]> => listJobs(db, now, deps.jobs(), settings),

    /** The most recent runs of a job (or of every job), newest first. */
    history: (options: { job?: string; limit: number }): Promise<HistoryRow[]> => readHistory(db, options),

    /** Stops the timers, aborts running jobs' signals and waits for them to end. */
    async stop(): Promise<void> {
      stopped = true;
      for (const t of timers) t.stop();
      timers.length = 0;
      controller.abort();
      await Promise.allSettled([...running]);
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;

export class UnknownJobError extends Error {
  override readonly name = 'UnknownJobError';
  readonly job: string;
  constructor(job: string) {
    super(`no job is named "${job}"`);
    this.job = job;
  }
}
