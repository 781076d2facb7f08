-- why: the restore drill's results (OPS-1) are kept where the trust report reads them.
--
-- `gatehouse backup drill` backs up a node under write load, restores into a scratch location,
-- verifies and starts a node on it. It records here, in the drilled storage, when it ran, which
-- backup, its outcome, RPO and RTO, so the trust report (and an operator) sees the last drill and
-- its age instead of "not verified". A failed drill is recorded too, with its error code.
--
-- Platform data: no tenant, no row level security (like job_runs).
create table backup_drills (
  id uuid primary key,
  started_at timestamptz not null,
  finished_at timestamptz not null,
  backup_id text,
  outcome text not null check (outcome in ('succeeded', 'failed')),
  rpo_ms integer check (rpo_ms >= 0),
  rto_ms integer check (rto_ms >= 0),
  writes_acknowledged integer check (writes_acknowledged >= 0),
  writes_lost integer check (writes_lost >= 0),
  -- The error's class and code, never its message (which may carry data).
  error text,
  check ((outcome = 'succeeded') = (rpo_ms is not null and rto_ms is not null and error is null))
);
create index backup_drills_finished_idx on backup_drills (finished_at desc);

revoke all on backup_drills from gatehouse_app;
grant select, insert on backup_drills to gatehouse_app;
