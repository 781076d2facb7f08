-- why: an org can require a second factor of its members (AUTH-8 policy). The authorizer reads it
-- with the membership, so the requirement applies on the next request on every node.
alter table orgs add column require_mfa boolean not null default false;
