-- why: enterprise single sign-on per org (AUTH-9, issue 8 item 6). An org's admins configure
-- connections to their identity provider (OIDC by discovery, or SAML 2.0 from IdP metadata),
-- claim email domains for them, and may require SSO of their members. All three tables hold tenant
-- data: tenant_id, row level security enabled and forced, policies on the per-transaction tenant
-- context in the `(select current_setting(...))` form, and an index led by tenant_id.
--
-- Three reads happen before anything says which org is meant, and each goes through one more
-- SELECT-only policy keyed on a per-transaction setting (as api_keys does for a presented key):
-- - the start, callback and ACS of a sign-in name a connection id in their path: a transaction
--   that sets gatehouse.sso_connection_id to it sees exactly that connection row;
-- - discovery routes an email by its domain: a transaction that sets gatehouse.sso_domain sees
--   exactly the verified claim of that domain (never an unverified one, never a list);
-- - account deletion finds the user's own links across orgs through gatehouse.user_id
--   (Db.withUser), then deletes them in each org's context.
-- Every write needs the tenant context.
--
-- A domain is claimed by an org and routes sign-ins only once the platform operator verified it;
-- a domain is verified for one org at most (the partial unique index).

create table sso_connections (
  id uuid primary key,
  tenant_id uuid not null references orgs (tenant_id) on delete cascade,
  kind text not null check (kind in ('oidc', 'saml')),
  name text not null check (char_length(name) between 1 and 100),
  -- The role a user provisioned just in time gets; never owner.
  default_role text not null check (default_role in ('admin', 'editor', 'viewer')),
  enabled boolean not null default true,
  -- OIDC: the issuer (discovery), the client, its secret sealed with the org's data key (src/keyring), scopes.
  oidc_issuer text check (char_length(oidc_issuer) <= 2048),
  oidc_client_id text check (char_length(oidc_client_id) <= 512),
  oidc_client_secret_sealed text,
  oidc_scopes text[],
  -- SAML: what the IdP metadata said (entity id, SSO URL of the HTTP-Redirect binding, signing
  -- certificates as PEM), and whether the Response itself must be signed (the assertion always is).
  saml_idp_entity_id text check (char_length(saml_idp_entity_id) <= 1024),
  saml_sso_url text check (char_length(saml_sso_url) <= 2048),
  saml_idp_certs text[],
  saml_want_response_signed boolean not null default false,
  created_by uuid not null references users (id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, id),
  check (
    (kind = 'oidc' and oidc_issuer is not null and oidc_client_id is not null and oidc_client_secret_sealed is not null and oidc_scopes is not null)
    or (kind = 'saml' and saml_idp_entity_id is not null and saml_sso_url is not null and cardinality(saml_idp_certs) between 1 and 10)
  )
);

create table sso_domains (
  id uuid primary key,
  tenant_id uuid not null,
  connection_id uuid not null,
  -- Lowercase ASCII (IDNA A-labels), no trailing dot.
  domain text not null check (char_length(domain) <= 253 and domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
  verified_at timestamptz,
  verified_by uuid references users (id),
  created_at timestamptz not null default now(),
  unique (tenant_id, domain),
  foreign key (tenant_id, connection_id) references sso_connections (tenant_id, id) on delete cascade
);
-- One org at most per verified domain.
create unique index sso_domains_verified_idx on sso_domains (domain) where verified_at is not null;

-- A user's link to an IdP account: by the IdP's subject (OIDC sub, SAML NameID), per connection.
create table sso_identities (
  id uuid primary key,
  tenant_id uuid not null,
  connection_id uuid not null,
  subject text not null check (char_length(subject) between 1 and 1024),
  user_id uuid not null references users (id),
  email text not null,
  created_at timestamptz not null default now(),
  last_login_at timestamptz,
  unique (tenant_id, connection_id, subject),
  unique (tenant_id, connection_id, user_id),
  foreign key (tenant_id, connection_id) references sso_connections (tenant_id, id) on delete cascade
);
create index sso_identities_user_idx on sso_identities (user_id);

-- The org setting: password sign-in is refused to members (owners excepted, as break-glass).
alter table orgs add column sso_required boolean not null default false;

alter table sso_connections enable row level security;
alter table sso_connections force row level security;
create policy sso_connections_tenant on sso_connections
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
create policy sso_connections_presented_read on sso_connections for select
  using (id = (select nullif(current_setting('gatehouse.sso_connection_id', true), '')::uuid));

alter table sso_domains enable row level security;
alter table sso_domains force row level security;
create policy sso_domains_tenant on sso_domains
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
create policy sso_domains_routing_read on sso_domains for select
  using (verified_at is not null and domain = (select nullif(current_setting('gatehouse.sso_domain', true), '')));

alter table sso_identities enable row level security;
alter table sso_identities force row level security;
create policy sso_identities_tenant on sso_identities
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
create policy sso_identities_self_read on sso_identities for select
  using (user_id = (select nullif(current_setting('gatehouse.user_id', true), '')::uuid));

revoke all on sso_connections, sso_domains, sso_identities from gatehouse_app;
grant select, insert, update, delete on sso_connections, sso_domains, sso_identities to gatehouse_app;
