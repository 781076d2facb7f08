-- why: the operators' list of pending email-domain claims (GET /v1/admin/domain-claims,
-- src/federation/sso-domains.ts), so the operator picks the claim to verify instead of typing the
-- org's id. The claims of every org are read in one statement, outside any tenant context, so two
-- SELECT-only policies let such a read through, narrowly: only while the transaction set
-- gatehouse.sso_claims_review (only that route sets it, after the operator check), only without a
-- tenant context (inside one these policies show nothing: an org never sees another's claims
-- through them), only claims not yet verified, and of orgs only the name of one with such a claim.
-- The list is keyset-paged on (created_at, id): a partial index in that order, on the same
-- predicate, reads a page in order and stops.
create policy sso_domains_pending_review on sso_domains for select
  using (verified_at is null
         and nullif(current_setting('gatehouse.tenant_id', true), '') is null
         and (select current_setting('gatehouse.sso_claims_review', true)) = 'on');
create policy orgs_pending_claim_review on orgs for select
  using (nullif(current_setting('gatehouse.tenant_id', true), '') is null
         and (select current_setting('gatehouse.sso_claims_review', true)) = 'on'
         and exists (select 1 from sso_domains d where d.tenant_id = orgs.tenant_id and d.verified_at is null));
create index sso_domains_pending_idx on sso_domains (created_at, id) where verified_at is null;
