-- why: organizations, workspaces, memberships and invitations (TEN-1..3). Every table here holds
-- tenant data: it carries tenant_id (an org's id in tenants), row-level security enabled and
-- forced, and policies keyed on the per-transaction tenant context in the
-- `(select current_setting(...))` form, evaluated once per statement. Every policy column is the
-- leading column of an index.
--
-- Two reads are not scoped to one tenant: a signed-in user listing the organizations they belong
-- to, and those memberships. They pass through a second per-transaction setting,
-- gatehouse.user_id (Db.withUser), by SELECT-only policies; every write needs the tenant context.

create table orgs (
  tenant_id uuid primary key references tenants (id),
  name text not null check (char_length(name) between 1 and 100),
  created_by uuid not null references users (id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table memberships (
  tenant_id uuid not null references orgs (tenant_id) on delete cascade,
  user_id uuid not null references users (id),
  role text not null check (role in ('owner', 'admin', 'editor', 'viewer')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, user_id)
);
create index memberships_user_idx on memberships (user_id);

create table workspaces (
  id uuid primary key,
  tenant_id uuid not null references orgs (tenant_id) on delete cascade,
  name text not null check (char_length(name) between 1 and 100),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, id)
);

-- A row narrows one member's role in one workspace; without a row the org role applies.
create table workspace_members (
  tenant_id uuid not null,
  workspace_id uuid not null,
  user_id uuid not null,
  role text not null check (role in ('owner', 'admin', 'editor', 'viewer')),
  created_at timestamptz not null default now(),
  primary key (tenant_id, workspace_id, user_id),
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade,
  -- Leaving the org removes the member's workspace roles with it.
  foreign key (tenant_id, user_id) references memberships (tenant_id, user_id) on delete cascade
);

create table invitations (
  id uuid primary key,
  tenant_id uuid not null references orgs (tenant_id) on delete cascade,
  -- Lowercased, NFKC-normalised, compared with the accepting user's verified address.
  email text not null,
  role text not null check (role in ('owner', 'admin', 'editor', 'viewer')),
  -- SHA-256 of the secret part of the emailed token.
  token_hash text not null unique,
  invited_by uuid not null references users (id),
  expires_at timestamptz not null,
  accepted_at timestamptz,
  accepted_by uuid references users (id),
  revoked_at timestamptz,
  created_at timestamptz not null default now()
);
create index invitations_tenant_idx on invitations (tenant_id, created_at);

alter table orgs enable row level security;
alter table orgs force row level security;
create policy orgs_tenant on orgs
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
create policy orgs_member_read on orgs for select
  using (tenant_id in (select m.tenant_id from memberships m
                        where m.user_id = (select nullif(current_setting('gatehouse.user_id', true), '')::uuid)));

alter table memberships enable row level security;
alter table memberships force row level security;
create policy memberships_tenant on memberships
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
create policy memberships_self_read on memberships for select
  using (user_id = (select nullif(current_setting('gatehouse.user_id', true), '')::uuid));

alter table workspaces enable row level security;
alter table workspaces force row level security;
create policy workspaces_tenant on workspaces
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table workspace_members enable row level security;
alter table workspace_members force row level security;
create policy workspace_members_tenant on workspace_members
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table invitations enable row level security;
alter table invitations force row level security;
create policy invitations_tenant on invitations
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

revoke all on orgs, memberships, workspaces, workspace_members, invitations from gatehouse_app;
grant select, insert, update, delete on orgs, memberships, workspaces, workspace_members, invitations to gatehouse_app;
