-- why: the operators' user list (GET /v1/admin/users, src/identity/accounts-operator.ts) is
-- keyset-paged on (created_at, id) over the users that are not deleted: `where status <> 'deleted'
-- and (created_at, id) > ($cursor) order by created_at, id limit n`. Without an index in that order
-- every page sorts the whole users table; with it a page reads its rows in order and stops at n.
-- Partial on the same predicate as the query (like users_email_live_idx), so deleted accounts
-- take no room in it.
create index users_created_id_live_idx on users (created_at, id) where status <> 'deleted';
