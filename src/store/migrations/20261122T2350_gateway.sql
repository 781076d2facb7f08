-- why: the AI gateway (GW-1..4): API keys, a workspace's own provider credentials (bring your own
-- key), a workspace's model routing, and usage records. All four hold tenant data: tenant_id, row
-- level security enabled and forced, policies on the per-transaction tenant context in the
-- `(select current_setting(...))` form, and an index led by tenant_id.
--
-- Finding a presented key's org. A key is looked up by its public id before anything says which
-- org it belongs to, and the application role sees no org's rows without that org's context. Three
-- ways were weighed:
-- - a platform-level api_key_index(id, tenant_id) without RLS: a cross-tenant list of every key id
--   and its org, readable in full by any query that forgets a WHERE;
-- - the org id inside the key: tells whoever finds a leaked key which org it opens, and makes keys
--   longer for nothing;
-- - (chosen) one more SELECT-only policy on api_keys that shows a transaction exactly one row: the
--   one whose id equals the per-transaction setting gatehouse.api_key_id. The verifier sets it
--   (SET LOCAL, like the tenant) to the id in the presented key, so the only lookup path is the key
--   itself: nothing can be listed, no other row is visible, a transaction in a tenant context
--   leaves the setting empty and sees nothing through it, and every write still needs the tenant
--   context. The row then names the org, and the secret hash is checked in constant time.
-- Verified keys are cached per node and evicted on every node through kv pub/sub on revocation, so
-- this lookup runs once per key per node and cache lifetime, not per request.
--
-- Usage records and last-used times are written in batches from memory, never on the request path.

create table api_keys (
  -- The key's public id part (16 base62 characters), see src/gateway/api-key-format.ts.
  id text primary key check (id ~ '^[0-9A-Za-z]{16}$'),
  tenant_id uuid not null references orgs (tenant_id) on delete cascade,
  workspace_id uuid not null,
  -- SHA-256 (hex) of the key's 190-bit secret part; the plaintext is shown once and never stored.
  secret_hash text not null check (secret_hash ~ '^[0-9a-f]{64}$'),
  name text not null check (char_length(name) between 1 and 100),
  scopes text[] not null check (cardinality(scopes) between 1 and 16),
  expires_at timestamptz,
  monthly_limit integer check (monthly_limit > 0),
  rate_limit_per_minute integer check (rate_limit_per_minute > 0),
  created_by uuid not null references users (id),
  created_at timestamptz not null default now(),
  revoked_at timestamptz,
  last_used_at timestamptz,
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade
);
create index api_keys_tenant_idx on api_keys (tenant_id, workspace_id, created_at);

create table provider_credentials (
  -- The row id the sealed key is bound to (AAD); a new one on every replacement.
  id uuid primary key,
  tenant_id uuid not null,
  workspace_id uuid not null,
  -- The provider id aliases and usage records name, unique in the workspace.
  name text not null check (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  kind text not null check (kind in ('openai', 'anthropic', 'azure-openai', 'openai-compatible')),
  base_url text not null check (char_length(base_url) <= 2048),
  -- apiVersion, deployments and streamUsage, as in a platform provider.
  settings jsonb not null default '{}',
  models text[] not null check (cardinality(models) between 1 and 1000),
  -- The vendor key sealed with the org's data key (src/keyring); write-only through the API.
  api_key_sealed text not null,
  created_by uuid not null references users (id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, workspace_id, name),
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade
);

create table workspace_model_settings (
  tenant_id uuid not null,
  workspace_id uuid not null,
  -- Model names or `*` patterns this workspace may call; null: every model its providers serve.
  allowed_models text[],
  -- [{ "name": alias, "targets": [{ "model": m, "provider": p | null }, ...] }]: the fallback chain.
  aliases jsonb not null default '[]',
  updated_at timestamptz not null default now(),
  primary key (tenant_id, workspace_id),
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade
);

-- One row per gateway call that reached a provider. No foreign key to workspaces or keys: the
-- org's usage outlives a deleted workspace; it goes with the org.
create table usage_records (
  tenant_id uuid not null references orgs (tenant_id) on delete cascade,
  workspace_id uuid not null,
  api_key_id text not null,
  provider text not null,
  model text not null,
  input_tokens integer not null check (input_tokens >= 0),
  output_tokens integer not null check (output_tokens >= 0),
  -- True when a count was estimated (the provider reported none, or the stream broke).
  estimated boolean not null,
  -- Integer micro-dollars; null when the model has no price.
  cost_micro_usd bigint check (cost_micro_usd >= 0),
  status smallint not null,
  error_code text,
  duration_ms integer not null,
  created_at timestamptz not null
);
create index usage_records_tenant_time_idx on usage_records (tenant_id, created_at);

alter table api_keys enable row level security;
alter table api_keys force row level security;
create policy api_keys_tenant on api_keys
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
create policy api_keys_presented_read on api_keys for select
  using (id = (select nullif(current_setting('gatehouse.api_key_id', true), '')));

alter table provider_credentials enable row level security;
alter table provider_credentials force row level security;
create policy provider_credentials_tenant on provider_credentials
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table workspace_model_settings enable row level security;
alter table workspace_model_settings force row level security;
create policy workspace_model_settings_tenant on workspace_model_settings
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table usage_records enable row level security;
alter table usage_records force row level security;
create policy usage_records_tenant on usage_records
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

revoke all on api_keys, provider_credentials, workspace_model_settings, usage_records from gatehouse_app;
-- Keys are revoked, never deleted (usage and audit name them); they go with their workspace.
grant select, insert, update on api_keys to gatehouse_app;
grant select, insert, update, delete on provider_credentials, workspace_model_settings to gatehouse_app;
-- Usage records are append-only for the application.
grant select, insert on usage_records to gatehouse_app;
