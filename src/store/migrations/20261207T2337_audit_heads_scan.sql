-- why: the audit jobs (checkpoint, retention) and `gatehouse audit prune` must find every log, under
-- any owner role. audit_heads forces row-level security on its owner too, so an owner that is
-- neither superuser nor BYPASSRLS listed no log at all, and the jobs did nothing and succeeded.
-- This second policy, SELECT only, lets a transaction see every log's head row when it set
-- gatehouse.audit_scan (SET LOCAL, like gatehouse.webhook_relay for the relay's claim): only the
-- listing of logs does. A head holds sizes, tree hashes and checkpoint hashes, no event; every
-- write still needs the log's tenant context, and events, nodes and checkpoints stay per tenant.
create policy audit_heads_scan on audit_heads for select
  using ((select current_setting('gatehouse.audit_scan', true)) = 'on');
