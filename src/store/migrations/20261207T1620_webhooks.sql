-- why: inbound webhooks verified and relayed (EDGE-6).
--
-- webhook_endpoints: an org's (or the platform's) receiving endpoint, bound to one provider kind,
-- with the destination its events are relayed to and Gatehouse's own secret for signing those
-- relays (sealed under the org's data key, bound to the row). webhook_secrets: the provider's
-- signing secrets, sealed, write-only, several at once during a rotation, each with an optional
-- expiry. The Meta verify token is a provider secret too (its own column, sealed).
--
-- webhook_events: every verified event, the payload sealed, with the provider's event id and
-- type. webhook_replays: one row per (endpoint, event id), written in the same transaction as the
-- event, so two nodes receiving the same event at once store it once (the second insert
-- conflicts and the whole transaction is refused). Kept for webhooks.replayDays, longer than the
-- events' retention may be, and far longer than any timestamp tolerance.
--
-- webhook_deliveries: the relay queue, without a payload (ids, status, counters), so every node's
-- relay worker can claim due deliveries of any org with `for update skip locked` and a lease; the
-- payload is read in the org's own tenant context. The claim runs without a tenant context, so
-- the table has, beside the tenant policy, a second one that lets a transaction through only when
-- it set gatehouse.webhook_relay (SET LOCAL, like gatehouse.api_key_id for api_keys): only the
-- relay's claim does; every other query, in any tenant context, sees its own org's rows only.
-- webhook_attempts: each delivery attempt (status code or error code, duration, node).
--
-- Tenant tables carry tenant_id with row level security enabled and forced. tenant_id is the
-- platform tenant id for platform-level endpoints, so it has no foreign key to orgs.
create table webhook_endpoints (
  id uuid primary key,
  tenant_id uuid not null,
  name text not null check (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  provider text not null check (provider in ('stripe', 'paddle', 'meta', 'mercadopago', 'github', 'standard')),
  destination_url text,
  destination_secret_sealed text not null,
  verify_token_sealed text,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  unique (tenant_id, name)
);

create table webhook_secrets (
  id uuid primary key,
  tenant_id uuid not null,
  endpoint_id uuid not null references webhook_endpoints (id) on delete cascade,
  secret_sealed text not null,
  expires_at timestamptz,
  created_at timestamptz not null
);
create index webhook_secrets_endpoint_idx on webhook_secrets (tenant_id, endpoint_id);

create table webhook_events (
  id uuid primary key,
  tenant_id uuid not null,
  endpoint_id uuid not null references webhook_endpoints (id) on delete cascade,
  provider text not null,
  event_id text not null,
  event_type text,
  payload_sealed text not null,
  received_at timestamptz not null,
  unique (endpoint_id, event_id)
);
create index webhook_events_tenant_received_idx on webhook_events (tenant_id, received_at desc);

create table webhook_replays (
  tenant_id uuid not null,
  endpoint_id uuid not null references webhook_endpoints (id) on delete cascade,
  event_id text not null,
  expires_at timestamptz not null,
  primary key (endpoint_id, event_id)
);
create index webhook_replays_tenant_idx on webhook_replays (tenant_id);
create index webhook_replays_expires_idx on webhook_replays (expires_at);

create table webhook_deliveries (
  event_id uuid primary key references webhook_events (id) on delete cascade,
  tenant_id uuid not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'dead', 'no_destination')),
  attempts integer not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz not null,
  locked_until timestamptz,
  -- The last failure: an HTTP status (`http_503`) or an error code, never a response body.
  last_error text,
  delivered_at timestamptz,
  updated_at timestamptz not null
);
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at) where status = 'pending';

create table webhook_attempts (
  id uuid primary key,
  tenant_id uuid not null,
  event_id uuid not null references webhook_events (id) on delete cascade,
  attempt integer not null,
  at timestamptz not null,
  status_code integer,
  error text,
  duration_ms integer not null,
  node text not null
);
create index webhook_attempts_event_idx on webhook_attempts (tenant_id, event_id, attempt);

alter table webhook_endpoints enable row level security;
alter table webhook_endpoints force row level security;
create policy webhook_endpoints_tenant on webhook_endpoints
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
alter table webhook_secrets enable row level security;
alter table webhook_secrets force row level security;
create policy webhook_secrets_tenant on webhook_secrets
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
alter table webhook_events enable row level security;
alter table webhook_events force row level security;
create policy webhook_events_tenant on webhook_events
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
alter table webhook_replays enable row level security;
alter table webhook_replays force row level security;
create policy webhook_replays_tenant on webhook_replays
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
alter table webhook_deliveries enable row level security;
alter table webhook_deliveries force row level security;
create policy webhook_deliveries_tenant on webhook_deliveries
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));
create policy webhook_deliveries_relay on webhook_deliveries
  using ((select current_setting('gatehouse.webhook_relay', true)) = 'on')
  with check ((select current_setting('gatehouse.webhook_relay', true)) = 'on');
alter table webhook_attempts enable row level security;
alter table webhook_attempts force row level security;
create policy webhook_attempts_tenant on webhook_attempts
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

revoke all on webhook_endpoints, webhook_secrets, webhook_events, webhook_replays, webhook_deliveries, webhook_attempts from gatehouse_app;
grant select, insert, update, delete on webhook_endpoints, webhook_secrets, webhook_events, webhook_replays, webhook_deliveries, webhook_attempts to gatehouse_app;
