/**
 * The servers of the MCP registry (GW-5): a workspace's upstream MCP servers, their URL and their
 * request headers (credentials) sealed with the org's data key and bound to the row, write-only
 * (only header names are shown). A changed URL sends every tool of the server back to review.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import { McpGatewayError } from './errors.ts';
import { SEALED, SERVER_COLUMNS, iso, serverView, type McpRegistryDeps, type ServerInput, type ServerRow, type ServerView } from './registry-model.ts';

/** @example const servers = createServerStore(deps) */
export function createServerStore(deps: McpRegistryDeps) {
  const { db, keyring, audit } = deps;

  async function serverRow(orgId: string, wsId: string, name: string): Promise<ServerRow> {
    const { rows } = await db.withTenant(orgId, (tx) => tx.query<ServerRow>(`select ${SERVER_COLUMNS} from mcp_servers where workspace_id = $1 and name = $2`, [wsId, name]));
    const row = rows[0];
    if (!row) throw new AppError('NOT_FOUND');
    return row;
  }

  async function openHeaders(orgId: string, serverId: string, sealed: string | null): Promise<Record<string, string>> {
    if (sealed === null) return {};
    const text = (await keyring.open({ tenantId: orgId }, { ...SEALED, rowId: serverId }, sealed)).toString('utf8');
    return JSON.parse(text) as Record<string, string>;
  }

  return {
    serverRow,
    openHeaders,

    async listServers(orgId: string, wsId: string): Promise<ServerView[]> {
      const { rows } = await db.withTenant(orgId, (tx) => tx.query<ServerRow>(`select ${SERVER_COLUMNS} from mcp_servers where workspace_id = $1 order by name`, [wsId]));
      return rows.map(serverView);
    },

    /** Creates or replaces server `name`. Headers are sealed before the transaction; omitted headers mean none. */
    async setServer(orgId: string, wsId: string, actorId: string, name: string, input: ServerInput): Promise<ServerView> {
      const existing = await db.withTenant(orgId, (tx) => tx.query<{ id: string; url: string }>('select id, url from mcp_servers where workspace_id = $1 and name = $2', [wsId, name]));
      // The id stays across replacements (tool reviews hang on it); the sealed headers are bound to it.
      const id = existing.rows[0]?.id ?? randomUUID();
      const headers = input.headers ?? {};
      const headerNames = Object.keys(headers).sort();
      const sealed = headerNames.length === 0 ? null : await keyring.seal({ tenantId: orgId }, { ...SEALED, rowId: id }, JSON.stringify(headers));
      const event = await audit.prepare({
        tenantId: orgId,
        action: 'mcp.server.set',
        target: { type: 'mcp_server', id },
        data: { workspace: wsId, name, url: input.url, headers: headerNames.join(' '), enabled: input.enabled ?? true, resultPolicy: input.resultPolicy ?? 'enforce', resources: input.resources ?? false },
      });
      const row = await db.withTenant(orgId, async (tx) => {
        // One change at a time per workspace, so the count below stays true.
        const ws = await tx.query('select id from workspaces where id = $1 for update', [wsId]);
        if (ws.rowCount === 0) throw new AppError('NOT_FOUND');
        const { rows: count } = await tx.query<{ n: number }>('select count(*)::int as n from mcp_servers where workspace_id = $1 and name <> $2', [wsId, name]);
        if ((count[0]?.n ?? 0) >= deps.maxServersPerWorkspace) throw new McpGatewayError('MCP_LIMIT_REACHED', `A workspace may have at most ${deps.maxServersPerWorkspace} MCP servers.`);
        const { rows } = await tx.query<ServerRow & { old_url: string | null }>(
          `insert into mcp_servers (id, tenant_id, workspace_id, name, url, headers_sealed, header_names, enabled, result_policy, resources, created_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           on conflict (tenant_id, workspace_id, name) do update
             set url = excluded.url, headers_sealed = excluded.headers_sealed, header_names = excluded.header_names,
                 enabled = excluded.enabled, result_policy = excluded.result_policy, resources = excluded.resources, updated_at = clock_timestamp()
             where mcp_servers.id = excluded.id
           returning ${SERVER_COLUMNS}`,
          [id, orgId, wsId, name, input.url, sealed, headerNames, input.enabled ?? true, input.resultPolicy ?? 'enforce', input.resources ?? false, actorId],
        );
        const row = rows[0];
        // Replaced concurrently with another id: this seal is bound to the wrong row; the caller retries.
        if (!row) throw new McpGatewayError('MCP_SERVER_CHANGED');
        // Another upstream behind the same name: what was approved there is not approved here.
        if (existing.rows[0] && existing.rows[0].url !== input.url) {
          await tx.query("update mcp_tools set status = 'pending', reviewed_by = null, reviewed_at = null where server_id = $1", [id]);
          await tx.query("update mcp_prompts set status = 'pending', reviewed_by = null, reviewed_at = null where server_id = $1", [id]);
        }
        await audit.append(tx, event);
        return row;
      });
      return serverView(row);
    },

    async removeServer(orgId: string, wsId: string, name: string): Promise<string> {
      const row = await serverRow(orgId, wsId, name);
      const event = await audit.prepare({ tenantId: orgId, action: 'mcp.server.deleted', target: { type: 'mcp_server', id: row.id }, data: { workspace: wsId, name } });
      const deleted = await db.withTenant(orgId, async (tx) => {
        const res = await tx.query('delete from mcp_servers where id = $1 and workspace_id = $2', [row.id, wsId]);
        if (res.rowCount !== 0) await audit.append(tx, event);
        return res.rowCount !== 0;
      });
      if (!deleted) throw new AppError('NOT_FOUND');
      return row.id;
    },

    /** The server's id, URL, version and opened headers, for a connection. Throws NOT_FOUND. */
    async target(orgId: string, wsId: string, name: string) {
      const row = await serverRow(orgId, wsId, name);
      return { id: row.id, url: row.url, version: iso(row.updated_at), headers: await openHeaders(orgId, row.id, row.headers_sealed) };
    },

  };
}
