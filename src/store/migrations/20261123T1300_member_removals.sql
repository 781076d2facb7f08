-- why: a member an org admin removed is not made a member again by the org's SSO just-in-time
-- provisioning (AUTH-9, TEN-1). Offboarding often happens in Gatehouse before (or instead of) the
-- identity provider; without this record, the next SSO sign-in of the removed person re-created
-- the membership with the default role. The record is written when an admin removes a member
-- (not when a member leaves), read by the SSO sign-in in the org's context, and deleted when the
-- person accepts a new invitation to the org. Tenant data: tenant_id, row level security enabled
-- and forced on the per-transaction tenant context, primary key led by tenant_id.
create table member_removals (
  tenant_id uuid not null references orgs (tenant_id) on delete cascade,
  user_id uuid not null references users (id) on delete cascade,
  removed_by uuid references users (id) on delete set null,
  removed_at timestamptz not null default now(),
  primary key (tenant_id, user_id)
);

alter table member_removals enable row level security;
alter table member_removals force row level security;
create policy member_removals_tenant on member_removals
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

revoke all on member_removals from gatehouse_app;
grant select, insert, update, delete on member_removals to gatehouse_app;
