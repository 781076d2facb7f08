-- why: envelope encryption (DATA-2) needs a data key (DEK) per tenant, and per user for
-- personal data, stored only wrapped by a key-encryption key; crypto-shredding (DATA-3)
-- leaves a tombstone so a destroyed key is told apart from an unknown one. Signing keys for
-- access tokens and audit checkpoints are platform data whose private halves are sealed.
-- Re-encryption after a DEK rotation runs as a resumable job whose progress lives here.

-- The platform is a tenant too: its DEK seals platform secrets such as signing keys.
insert into tenants (id, kind) values ('00000000-0000-4000-8000-000000000000', 'platform');

create table data_keys (
  id uuid primary key,
  tenant_id uuid not null references tenants (id),
  -- null: the tenant's own key; otherwise the key of one user's personal data.
  subject_id uuid,
  kek_version integer not null check (kek_version > 0),
  -- null once destroyed: the key material is gone, only the tombstone stays.
  wrapped text,
  state text not null check (state in ('active', 'retired', 'destroyed')),
  -- Seals reserved by nodes so far; a key is retired before it reaches the usage bound.
  reserved_uses bigint not null default 0,
  created_at timestamptz not null default now(),
  retired_at timestamptz,
  destroyed_at timestamptz,
  check ((state = 'destroyed') = (wrapped is null))
);
create index data_keys_tenant_idx on data_keys (tenant_id);
create unique index data_keys_one_active_idx on data_keys (tenant_id, coalesce(subject_id, '00000000-0000-0000-0000-000000000000'::uuid))
  where state = 'active';
alter table data_keys enable row level security;
alter table data_keys force row level security;
create policy data_keys_tenant on data_keys
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
revoke all on data_keys from gatehouse_app;
grant select, insert, update on data_keys to gatehouse_app;

create table key_jobs (
  id uuid primary key,
  tenant_id uuid not null references tenants (id),
  kind text not null check (kind in ('rotate-dek')),
  from_dek uuid not null,
  to_dek uuid not null,
  state text not null check (state in ('running', 'done')),
  -- Per sealed column, the last row id re-encrypted: a re-run continues from there.
  progress jsonb not null default '{}',
  done_count bigint not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index key_jobs_tenant_idx on key_jobs (tenant_id);
alter table key_jobs enable row level security;
alter table key_jobs force row level security;
create policy key_jobs_tenant on key_jobs
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
revoke all on key_jobs from gatehouse_app;
grant select, insert, update on key_jobs to gatehouse_app;

create table signing_keys (
  kid text primary key,
  purpose text not null check (purpose in ('access-token', 'audit-checkpoint')),
  public_jwk jsonb not null,
  private_sealed text not null,
  -- next: published, not yet used; current: signs; previous: published, verifies only.
  state text not null check (state in ('next', 'current', 'previous', 'retired')),
  created_at timestamptz not null default now(),
  activated_at timestamptz,
  retired_at timestamptz
);
create unique index signing_keys_one_current_idx on signing_keys (purpose) where state = 'current';
create unique index signing_keys_one_next_idx on signing_keys (purpose) where state = 'next';
revoke all on signing_keys from gatehouse_app;
grant select, insert, update on signing_keys to gatehouse_app;
