-- why: the tamper-evident audit log (AUDIT-1..4). One log per tenant: each org's, and the platform
-- tenant's for operator and account events. Logs outlive their org (they reference tenants, not
-- orgs) and are append-only: the application role may only insert events, tree nodes and
-- checkpoints, and a trigger refuses UPDATE and DELETE for everyone, except the deletion of old
-- events by the owner during retention pruning (which keeps nodes and checkpoints, so what
-- remains still verifies).
--
-- Sequence numbers are gapless and unique under concurrent writers on several nodes: an append
-- locks its log's head row, takes head.size as the event's seq and advances the head in the same
-- transaction; a rollback undoes both.

create table audit_heads (
  tenant_id uuid primary key references tenants (id),
  size bigint not null default 0,
  -- Heads of the perfect subtrees of the first `size` leaves, largest first (base64url).
  frontier jsonb not null default '[]',
  last_checkpoint_size bigint,
  -- checkpointHash of the last checkpoint: the next one's `previous`.
  last_checkpoint_hash text,
  last_checkpoint_at timestamptz,
  -- Events below this seq were removed by retention.
  pruned_upto bigint not null default 0
);

create table audit_events (
  tenant_id uuid not null references tenants (id),
  seq bigint not null,
  id uuid not null,
  time timestamptz not null,
  action text not null,
  actor_id text,
  -- The event's RFC 8785 canonical JSON, personal fields sealed: the Merkle leaf is
  -- SHA-256(0x00 || body), so crypto-shredding a key never changes a leaf.
  body text not null,
  primary key (tenant_id, seq)
);
create index audit_events_action_idx on audit_events (tenant_id, action, seq);
create index audit_events_actor_idx on audit_events (tenant_id, actor_id, seq);
create index audit_events_time_idx on audit_events (tenant_id, time);

-- Every perfect subtree head (level 0: leaves): proofs in O(log n) reads, and after pruning.
create table audit_nodes (
  tenant_id uuid not null references tenants (id),
  level smallint not null,
  idx bigint not null,
  hash bytea not null,
  primary key (tenant_id, level, idx)
);

create table audit_checkpoints (
  tenant_id uuid not null references tenants (id),
  size bigint not null,
  -- The checkpoint's canonical JSON, as signed.
  body text not null,
  signature text not null,
  kid text not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, size)
);

create function audit_append_only() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' and tg_table_name = 'audit_events'
     and current_setting('gatehouse.audit_prune', true) = 'on' and current_user <> 'gatehouse_app' then
    return old;
  end if;
  raise exception 'the audit log is append-only: % on % refused', tg_op, tg_table_name using errcode = '42501';
end
$$;
create trigger audit_events_append_only before update or delete on audit_events
  for each row execute function audit_append_only();
create trigger audit_nodes_append_only before update or delete on audit_nodes
  for each row execute function audit_append_only();
create trigger audit_checkpoints_append_only before update or delete on audit_checkpoints
  for each row execute function audit_append_only();

alter table audit_heads enable row level security;
alter table audit_heads force row level security;
create policy audit_heads_tenant on audit_heads
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table audit_events enable row level security;
alter table audit_events force row level security;
create policy audit_events_tenant on audit_events
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table audit_nodes enable row level security;
alter table audit_nodes force row level security;
create policy audit_nodes_tenant on audit_nodes
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table audit_checkpoints enable row level security;
alter table audit_checkpoints force row level security;
create policy audit_checkpoints_tenant on audit_checkpoints
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

revoke all on audit_heads, audit_events, audit_nodes, audit_checkpoints from gatehouse_app;
grant select, insert, update on audit_heads to gatehouse_app;
grant select, insert on audit_events, audit_nodes, audit_checkpoints to gatehouse_app;
