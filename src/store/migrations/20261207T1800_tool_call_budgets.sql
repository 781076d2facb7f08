-- why: budgets of MCP tool calls (ABUSE-2 with GW-5): the budgets feature reserves one `tool_calls`
-- per call through the MCP gateway and settles it (refunded when a later step refused the call).
-- The category list of budgets grows by one; existing rows are unchanged.
alter table budgets drop constraint budgets_category_check;
alter table budgets add constraint budgets_category_check check (category in ('ai_tokens', 'ai_cost', 'embedding_tokens', 'files', 'file_bytes', 'messages', 'tool_calls'));
