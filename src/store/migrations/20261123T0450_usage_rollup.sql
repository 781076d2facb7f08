-- why: the gateway's usage records become roll-ups. Writing one row per call cost the embedded
-- engine (PGlite, on the server's own event loop) about a fifth of its busy time under load and
-- paused the server for tens of milliseconds at each flush. A node now adds calls up in memory per
-- org, workspace, key, provider, model, outcome (status, error code, estimated, priced) and UTC
-- minute, and writes one row per group at each flush (src/gateway/metering.ts):
-- - requests: the calls the row stands for (1 for every row written before this migration);
-- - input_tokens, output_tokens, cost_micro_usd, duration_ms: their sums (cost stays null when the
--   calls had no price);
-- - created_at: the start of their minute.
-- The usage report sums `requests` instead of counting rows. Rows stay append-only; two nodes (or
-- two flushes) may write rows for the same group, which the report adds up.
alter table usage_records add column requests integer not null default 1 check (requests >= 1);
-- Sums over many calls can pass the 32-bit range.
alter table usage_records alter column input_tokens type bigint, alter column output_tokens type bigint, alter column duration_ms type bigint;
