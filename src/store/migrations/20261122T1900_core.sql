-- why: every tenant-scoped table needs a registry of the tenant ids that exist (the platform
-- tenant and each org). This table is that registry, not tenant data, so it has no RLS;
-- the application may list and register tenants but never rewrite or delete them.
create table tenants (
  id uuid primary key default gen_random_uuid(),
  kind text not null check (kind in ('platform', 'org')),
  created_at timestamptz not null default now()
);

-- The default privileges grant update/delete too; narrow them for this table.
revoke all on tenants from gatehouse_app;
grant select, insert on tenants to gatehouse_app;
