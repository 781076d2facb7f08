-- why: central anti-abuse budgets (ABUSE-2). An org's admins set budgets per category (AI tokens,
-- AI cost in micro-dollars, embedding tokens, files, file bytes, messages), per scope (the org, one
-- workspace, or one API key) and per UTC day or month. Live counters are in kv (memory on the
-- embedded node, Redis across nodes); this database is their source of truth:
-- - budgets: the definitions. `version` grows with every change (the API's optimistic check);
--   `warned_period` is the period whose soft-limit warning was sent, so exactly one node sends it.
-- - budget_ledger: one row per reservation, written BEFORE the reservation is counted in kv and
--   updated with the actual use BEFORE it is settled there (src/budgets/ledger.ts). A counter kv
--   lost (a Redis flush or restart, an embedded node's restart) is rebuilt from these rows: the
--   settled amounts plus the open reservations. Reservations whose call never settled (a node
--   killed, a client gone) expire and are settled from the usage records (metering).
-- Both hold tenant data: tenant_id, row level security enabled and forced, an index led by tenant_id.

create table budgets (
  id uuid primary key,
  tenant_id uuid not null references orgs (tenant_id) on delete cascade,
  -- Scope: the org (both null), one workspace, or one API key (its workspace set too).
  workspace_id uuid,
  api_key_id text check (api_key_id ~ '^[0-9A-Za-z]{16}$'),
  category text not null check (category in ('ai_tokens', 'ai_cost', 'embedding_tokens', 'files', 'file_bytes', 'messages')),
  period text not null check (period in ('day', 'month')),
  hard_limit bigint not null check (hard_limit between 0 and 1000000000000000),
  soft_limit bigint check (soft_limit between 0 and 1000000000000000),
  version integer not null default 1,
  warned_period text,
  updated_by uuid not null references users (id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (soft_limit is null or soft_limit <= hard_limit),
  check (api_key_id is null or workspace_id is not null)
);
-- One budget per scope, category and period.
create unique index budgets_scope_idx on budgets (tenant_id, coalesce(workspace_id, '00000000-0000-0000-0000-000000000000'), coalesce(api_key_id, ''), category, period);

create table budget_ledger (
  -- The reservation id (kv holds it open in every counter it counts in).
  id text primary key check (id ~ '^[0-9A-Za-z_-]{1,64}$'),
  tenant_id uuid not null references orgs (tenant_id) on delete cascade,
  workspace_id uuid not null,
  api_key_id text,
  -- { category: amount } reserved, and settled once known.
  reserved jsonb not null,
  settled jsonb,
  state text not null check (state in ('open', 'settled', 'expired', 'refused')),
  request_id text,
  -- The periods it counts in: those of its reservation, whenever it settles.
  day text not null check (day ~ '^\d{4}-\d{2}-\d{2}$'),
  month text not null check (month ~ '^\d{4}-\d{2}$'),
  created_at timestamptz not null,
  expires_at timestamptz not null,
  settled_at timestamptz
);
create index budget_ledger_month_idx on budget_ledger (tenant_id, month);
create index budget_ledger_day_idx on budget_ledger (tenant_id, day);
-- Open reservations past their lifetime, found by the sweep without knowing the org.
create index budget_ledger_expiring_idx on budget_ledger (expires_at) where state = 'open';

alter table budgets enable row level security;
alter table budgets force row level security;
create policy budgets_tenant on budgets
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table budget_ledger enable row level security;
alter table budget_ledger force row level security;
create policy budget_ledger_tenant on budget_ledger
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
-- The sweep reads, without tenant context, only reservations that are open and past their
-- lifetime; settling one still needs the org's context. Inside a tenant context this policy shows
-- nothing (an org never sees another org's reservations through it).
create policy budget_ledger_expired_read on budget_ledger for select
  using (state = 'open' and expires_at < now() and nullif(current_setting('gatehouse.tenant_id', true), '') is null);

grant select, insert, update, delete on budgets, budget_ledger to gatehouse_app;

-- The ledger's group-committed writes in one round trip (src/budgets/ledger.ts): a reservation is
-- written before its call goes upstream, so every round trip saved is latency the call does not
-- pay. Runs as the caller (no SECURITY DEFINER): row level security applies, with the tenant
-- context set for this statement's transaction only, as withTenant sets it.
-- Commits without waiting for the WAL flush (synchronous_commit off, this transaction only): the
-- rows are visible to every node at commit, which is what a counter rebuild needs; only a crash
-- of PostgreSQL itself can lose the last fraction of a second of them (never corrupt anything),
-- and only a Redis flush at that same moment would then rebuild without them. Waiting for the
-- flush cost each metered call a disk sync (several ms) on its way upstream.
create function budget_ledger_write(p_tenant uuid, p_opens jsonb, p_closes jsonb) returns setof text
language plpgsql as $$
begin
  perform set_config('synchronous_commit', 'off', true);
  perform set_config('gatehouse.tenant_id', p_tenant::text, true);
  insert into budget_ledger (id, tenant_id, workspace_id, api_key_id, reserved, state, request_id, day, month, created_at, expires_at)
    select o.id, p_tenant, o.ws, o.k, o.r, 'open', o.req, o.d, o.m, o.c, o.e
    from jsonb_to_recordset(p_opens) as o(id text, ws uuid, k text, r jsonb, req text, d text, m text, c timestamptz, e timestamptz);
  -- Only an open reservation closes: a settle racing the expiry sweep (or a second settle) changes nothing.
  return query
    update budget_ledger l set state = u.s, settled = u.v, settled_at = u.t
    from jsonb_to_recordset(p_closes) as u(id text, s text, v jsonb, t timestamptz)
    where l.id = u.id and l.state = 'open'
    returning l.id;
  perform set_config('gatehouse.tenant_id', '', true);
end
$$;
revoke all on function budget_ledger_write(uuid, jsonb, jsonb) from public;
grant execute on function budget_ledger_write(uuid, jsonb, jsonb) to gatehouse_app;
