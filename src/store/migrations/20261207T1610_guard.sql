-- why: the input guard (ABUSE-3). A workspace's guard policy (mode, thresholds, rules switched
-- off, strike settings), and the strikes and temporary blocks of API keys and end users. Blocks
-- are security decisions, so this table is their source of truth: kv only caches "blocked until"
-- per subject so every node sees a block (or a lift) as soon as it is written.
-- Both tables hold tenant data: tenant_id, row level security enabled and forced, policies on the
-- per-transaction tenant context, an index led by tenant_id.
-- subject: 'key:<api key id>' or 'user:<sha-256 hex of the end-user id the client sent, 32 chars>'
-- (OpenAI `user`, Anthropic `metadata.user_id`): the end-user id itself is not stored.

create table guard_policies (
  tenant_id uuid not null,
  workspace_id uuid not null,
  -- The policy as src/guard/policy.ts validates it (mode, thresholds, disabledRules, strikes...).
  policy jsonb not null,
  updated_by uuid not null references users (id),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, workspace_id),
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade
);

create table guard_strikes (
  tenant_id uuid not null,
  workspace_id uuid not null,
  subject text not null check (subject ~ '^(key:[0-9A-Za-z]{16}|user:[0-9a-f]{32})$'),
  -- Blocked attempts counted since window_started_at.
  strikes integer not null check (strikes >= 0),
  window_started_at timestamptz not null,
  -- How many temporary blocks the subject has earned; each doubles the next one's duration.
  level integer not null default 0 check (level >= 0),
  blocked_until timestamptz,
  last_blocked_at timestamptz,
  updated_at timestamptz not null default now(),
  primary key (tenant_id, workspace_id, subject),
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade
);
create index guard_strikes_blocked_idx on guard_strikes (tenant_id, workspace_id, blocked_until);

alter table guard_policies enable row level security;
alter table guard_policies force row level security;
create policy guard_policies_tenant on guard_policies
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table guard_strikes enable row level security;
alter table guard_strikes force row level security;
create policy guard_strikes_tenant on guard_strikes
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

revoke all on guard_policies, guard_strikes from gatehouse_app;
grant select, insert, update, delete on guard_policies, guard_strikes to gatehouse_app;
