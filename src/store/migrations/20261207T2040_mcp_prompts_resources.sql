-- why: MCP prompts and resources through the gateway (GW-5). Prompts are text that reaches the
-- model as it is, like a tool's description: each prompt an upstream lists is recorded with its
-- definition's hash and starts `pending` (deny by default); an admin approves it, and a changed
-- definition goes back to `pending`. Resources are data an upstream lists and changes at will
-- (files, rows): no per-item review is possible, so an admin opts a server's resources in
-- (`resources`, off by default) and every read passes the result guard like a tool result.

alter table mcp_servers add column resources boolean not null default false;

create table mcp_prompts (
  tenant_id uuid not null,
  workspace_id uuid not null,
  server_id uuid not null references mcp_servers (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 128),
  -- { title, description, arguments } as the upstream listed it.
  definition jsonb not null,
  definition_hash text not null check (definition_hash ~ '^[0-9a-f]{64}$'),
  status text not null default 'pending' check (status in ('pending', 'approved', 'denied')),
  listed boolean not null default true,
  first_seen_at timestamptz not null default now(),
  reviewed_by uuid references users (id),
  reviewed_at timestamptz,
  primary key (server_id, name),
  foreign key (tenant_id, workspace_id) references workspaces (tenant_id, id) on delete cascade
);
create index mcp_prompts_tenant_idx on mcp_prompts (tenant_id, workspace_id, status);

alter table mcp_prompts enable row level security;
alter table mcp_prompts force row level security;
create policy mcp_prompts_tenant on mcp_prompts
  using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
  with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid));

revoke all on mcp_prompts from gatehouse_app;
grant select, insert, update, delete on mcp_prompts to gatehouse_app;
