-- why: a key's monthly call count lives in kv (memory on the embedded node, Redis across nodes).
-- When the counter is missing (a restart of the embedded node, a Redis restart without
-- persistence, an eviction) it is rebuilt from the usage records of that key and month
-- (src/gateway/monthly-limit.ts) instead of starting again from zero. This index keeps that
-- rebuild to the key's own rows rather than a scan of the whole org's month.
create index usage_records_key_time_idx on usage_records (api_key_id, created_at);
