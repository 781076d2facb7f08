-- why: scheduled jobs (EDGE-7). Every run of a job, on whichever node ran it, leaves one row:
-- when it started and ended, its outcome and a short summary, and which node ran it.
--
-- One run per scheduled time across the cluster: a scheduled run inserts its row with the time
-- it was scheduled for, and the unique index lets only the first node's insert through (the
-- others see a conflict and skip). Overlapping runs of one job (a scheduled run and the cron
-- endpoint, two endpoint calls) are kept apart by a PostgreSQL advisory lock held by the running
-- node's transaction: a node that dies releases it with its connection. A row still `running`
-- when the next holder of the lock starts belongs to a node that died: it is marked `abandoned`.
--
-- Platform data: no tenant, no row level security (like mail_queue).
create table job_runs (
  id uuid primary key,
  job text not null,
  -- schedule: the in-process scheduler; endpoint: POST /v1/cron/:job; cli: `gatehouse jobs run`.
  trigger text not null check (trigger in ('schedule', 'endpoint', 'cli')),
  scheduled_for timestamptz,
  node text not null,
  started_at timestamptz not null,
  finished_at timestamptz,
  duration_ms integer check (duration_ms >= 0),
  outcome text not null default 'running' check (outcome in ('running', 'succeeded', 'failed', 'abandoned')),
  summary jsonb,
  -- The error's class and code, never its message (which may carry data).
  error text,
  check ((trigger = 'schedule') = (scheduled_for is not null))
);
create unique index job_runs_scheduled_once on job_runs (job, scheduled_for) where scheduled_for is not null;
create index job_runs_job_started_idx on job_runs (job, started_at desc);
create index job_runs_running_idx on job_runs (job) where outcome = 'running';

revoke all on job_runs from gatehouse_app;
grant select, insert, update, delete on job_runs to gatehouse_app;
