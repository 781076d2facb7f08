-- why: one client token (GW-6) can be revoked by its id (jti) without revoking its parent API key.
-- The database is the source of truth (kv only caches the answer), so a revocation survives a
-- restart and a kv store that lost its memory; a row is kept until the token it names has surely
-- expired (keep_until), then pruned.
create table client_token_revocations (
  tenant_id uuid not null,
  workspace_id uuid not null,
  -- The token's jti: 16 random bytes, base64url.
  token_id text not null check (token_id ~ '^[A-Za-z0-9_-]{16,64}$'),
  revoked_at timestamptz not null default now(),
  -- After this the token is past its exp anyway (revoked_at + the longest lifetime + clock tolerance).
  keep_until timestamptz not null,
  revoked_by text not null check (char_length(revoked_by) between 1 and 200),
  -- By workspace: a member of one workspace can never revoke (or pre-empt revoking) another's token.
  primary key (tenant_id, workspace_id, token_id),
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade
);
create index client_token_revocations_keep_until on client_token_revocations (keep_until);

alter table client_token_revocations enable row level security;
alter table client_token_revocations force row level security;
create policy client_token_revocations_tenant on client_token_revocations
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
