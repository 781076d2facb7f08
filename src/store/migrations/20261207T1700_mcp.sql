-- why: the MCP gateway (GW-5). A workspace registers upstream MCP servers (Streamable HTTP) with
-- their credentials sealed (write-only through the API); every tool an upstream lists is recorded
-- with its definition and starts `pending`: only tools an admin approved are shown to MCP clients
-- and callable, and a tool whose definition changes goes back to `pending` (a changed description
-- or schema is a new tool for review). A key may be narrowed to a list of tools. All three tables
-- hold tenant data: tenant_id, row level security enabled and forced, the usual tenant policy.

create table mcp_servers (
  -- The row id the sealed headers are bound to (AAD); a new one on every replacement.
  id uuid primary key,
  tenant_id uuid not null,
  workspace_id uuid not null,
  -- The namespace of its tools for clients: `<name>__<tool>`. No `__` inside, so the split is unambiguous.
  name text not null check (name ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
  url text not null check (char_length(url) <= 2048),
  -- Request headers (e.g. Authorization) as a JSON object, sealed with the org's data key; null: none.
  headers_sealed text,
  -- The names of those headers, shown to admins (the values never are).
  header_names text[] not null default '{}',
  enabled boolean not null default true,
  -- What a result inspector's `block` does: enforce (the client gets a tool error) or monitor (audited only).
  result_policy text not null default 'enforce' check (result_policy in ('enforce', 'monitor')),
  last_synced_at timestamptz,
  created_by uuid not null references users (id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, workspace_id, name),
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade
);

create table mcp_tools (
  tenant_id uuid not null,
  workspace_id uuid not null,
  server_id uuid not null references mcp_servers (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 128),
  -- { description, inputSchema, annotations, title } as the upstream listed it.
  definition jsonb not null,
  -- SHA-256 (hex) of the canonical definition: a change sends the tool back to review.
  definition_hash text not null check (definition_hash ~ '^[0-9a-f]{64}$'),
  status text not null default 'pending' check (status in ('pending', 'approved', 'denied')),
  -- False once the upstream stopped listing it (kept for its review history).
  listed boolean not null default true,
  first_seen_at timestamptz not null default now(),
  reviewed_by uuid references users (id),
  reviewed_at timestamptz,
  primary key (server_id, name),
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade
);
create index mcp_tools_tenant_idx on mcp_tools (tenant_id, workspace_id, status);

-- A key's own tool allowlist (namespaced names); no row: every approved tool of its workspace.
create table mcp_key_tools (
  api_key_id text primary key references api_keys (id) on delete cascade,
  tenant_id uuid not null,
  workspace_id uuid not null,
  tools text[] not null check (cardinality(tools) <= 1000),
  updated_at timestamptz not null default now(),
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade
);
create index mcp_key_tools_tenant_idx on mcp_key_tools (tenant_id, workspace_id);

alter table mcp_servers enable row level security;
alter table mcp_servers force row level security;
create policy mcp_servers_tenant on mcp_servers
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table mcp_tools enable row level security;
alter table mcp_tools force row level security;
create policy mcp_tools_tenant on mcp_tools
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

alter table mcp_key_tools enable row level security;
alter table mcp_key_tools force row level security;
create policy mcp_key_tools_tenant on mcp_key_tools
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

revoke all on mcp_servers, mcp_tools, mcp_key_tools from gatehouse_app;
grant select, insert, update, delete on mcp_servers, mcp_tools, mcp_key_tools to gatehouse_app;
