-- why: an org's webhook endpoints (with their secrets, events, replay records, deliveries and attempts) go with the org (EDGE-6, TEN-1).
--
-- Every other tenant table references orgs (tenant_id) on delete cascade, so deleting an org
-- deletes its rows in the same statement. webhook_endpoints could not: its tenant_id is the
-- platform tenant's id for platform-level endpoints, which is no org. org_id is the tenant id of
-- org endpoints and null for platform ones (generated, never written), and references orgs with
-- on delete cascade; the endpoint's secrets, events and replay records cascade from it, and the
-- events' deliveries and attempts from them. The sealed values were unreadable already (the org's
-- data keys are destroyed with it); now the rows are gone too.
--
-- Rows left behind by orgs deleted before this migration are removed first.
delete from webhook_endpoints
 where tenant_id <> '00000000-0000-4000-8000-000000000000'::uuid
   and not exists (select 1 from orgs o where o.tenant_id = webhook_endpoints.tenant_id);

alter table webhook_endpoints
  add column org_id uuid generated always as (nullif(tenant_id, '00000000-0000-4000-8000-000000000000'::uuid)) stored
  references orgs (tenant_id) on delete cascade;

create index webhook_endpoints_org_idx on webhook_endpoints (org_id);
