-- why: an org's webhook endpoints (with their secrets, events, replay records, deliveries and attempts) go with the org (EDGE-6, TEN-1).
--
-- Every other tenant table references orgs (tenant_id) on delete cascade, so deleting an org
-- deletes its rows in the same statement. webhook_endpoints could not: its tenant_id is the
-- platform tenant's id for platform-level endpoints, which is no org. org_id is the tenant id of
-- org endpoints and null for platform ones, set by a trigger from tenant_id on every insert and
-- update (whatever the statement says), and references orgs with on delete cascade; the
-- endpoint's secrets, events and replay records cascade from it, and the events' deliveries and
-- attempts from them. The sealed values were unreadable already (the org's data keys are
-- destroyed with it); now the rows are gone too. (A plain column, not a generated one, so that a
-- copy of a row inserted as a whole still reaches the row-level security check.)
--
-- Rows left behind by orgs deleted before this migration are removed first.
delete from webhook_endpoints
 where tenant_id <> '00000000-0000-4000-8000-000000000000'::uuid
   and not exists (select 1 from orgs o where o.tenant_id = webhook_endpoints.tenant_id);

alter table webhook_endpoints add column org_id uuid references orgs (tenant_id) on delete cascade;
update webhook_endpoints set org_id = nullif(tenant_id, '00000000-0000-4000-8000-000000000000'::uuid);
alter table webhook_endpoints add constraint webhook_endpoints_org_id_matches
  check (org_id is not distinct from nullif(tenant_id, '00000000-0000-4000-8000-000000000000'::uuid));

create function webhook_endpoints_set_org_id() returns trigger language plpgsql as $$
begin
  new.org_id := nullif(new.tenant_id, '00000000-0000-4000-8000-000000000000'::uuid);
  return new;
end
$$;
create trigger webhook_endpoints_org_id before insert or update on webhook_endpoints
  for each row execute function webhook_endpoints_set_org_id();

create index webhook_endpoints_org_idx on webhook_endpoints (org_id);
