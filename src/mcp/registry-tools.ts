/**
 * The tools and prompts of the MCP registry (GW-5), reviewed alike: each item an upstream lists, with its definition and the
 * definition's hash; new items start `pending` (deny by default), a changed definition goes back
 * to `pending`, an admin approves or denies. Items the upstream stopped listing are kept,
 * unlisted. Tools live in `mcp_tools`, prompts in `mcp_prompts`. Key allowlists and the catalog: src/mcp/registry-access.ts.
 */
import { AppError } from '../server/errors.ts';
import { McpGatewayError } from './errors.ts';
import { NAMESPACE_SEPARATOR, hashOf, iso, type McpRegistryDeps, type ReviewedKind, type ToolStatus, type ToolView } from './registry-model.ts';

const TABLE: Record<ReviewedKind, string> = { tool: 'mcp_tools', prompt: 'mcp_prompts' };
import type { createServerStore } from './registry-servers.ts';

/** @example const tools = createToolStore(deps, servers); await tools.recordItems('tool', org, ws, id, name, items, new Date()) */
export function createToolStore(deps: McpRegistryDeps, servers: Pick<ReturnType<typeof createServerStore>, 'serverRow'>) {
  const { db, audit } = deps;
  const { serverRow } = servers;
  return {
    /**
     * Records what the upstream lists of one kind: new items `pending`, changed definitions back to `pending`,
     * items no longer listed marked unlisted. One transaction; audited with the counts.
     */
    async recordItems(kind: ReviewedKind, orgId: string, wsId: string, serverId: string, serverName: string, items: readonly { name: string; definition: object }[], at: Date): Promise<{ added: number; changed: number; unlisted: number }> {
      const table = TABLE[kind];
      const defs = items.map((t) => ({ ...t, hash: hashOf(t.definition) }));
      const names = defs.map((d) => d.name);
      if (new Set(names).size !== names.length || names.some((n) => n.length < 1 || n.length > 128)) throw new McpGatewayError('MCP_UPSTREAM_ERROR', `The MCP server lists duplicate or malformed ${kind} names.`);
      // Prepared before the transaction (it reaches the database); the counts are added at append.
      const event = await audit.prepare({ tenantId: orgId, action: 'mcp.tools.synced', target: { type: 'mcp_server', id: serverId }, data: { workspace: wsId, server: serverName, kind } });
      return db.withTenant(orgId, async (tx) => {
        const { rows: before } = await tx.query<{ name: string; definition_hash: string; listed: boolean }>(`select name, definition_hash, listed from ${table} where server_id = $1 for update`, [serverId]);
        const known = new Map(before.map((r) => [r.name, r]));
        let added = 0;
        let changed = 0;
        for (const d of defs) {
          const old = known.get(d.name);
          if (!old) added++;
          else if (old.definition_hash !== d.hash) changed++;
          await tx.query(
            `insert into ${table} (tenant_id, workspace_id, server_id, name, definition, definition_hash, first_seen_at)
             values ($1, $2, $3, $4, $5, $6, $7)
             on conflict (server_id, name) do update
               set definition = excluded.definition, definition_hash = excluded.definition_hash, listed = true,
                   status = case when ${table}.definition_hash = excluded.definition_hash then ${table}.status else 'pending' end,
                   reviewed_by = case when ${table}.definition_hash = excluded.definition_hash then ${table}.reviewed_by end,
                   reviewed_at = case when ${table}.definition_hash = excluded.definition_hash then ${table}.reviewed_at end`,
            [orgId, wsId, serverId, d.name, JSON.stringify(d.definition), d.hash, at.toISOString()],
          );
        }
        const { rowCount: unlisted } = await tx.query(`update ${table} set listed = false where server_id = $1 and listed and not (name = any($2::text[]))`, [serverId, names]);
        await tx.query('update mcp_servers set last_synced_at = $2 where id = $1', [serverId, at.toISOString()]);
        const counts = { added, changed, unlisted: unlisted ?? 0 };
        if (added + changed + counts.unlisted > 0) {
          await audit.append(tx, event, counts);
        }
        return counts;
      });
    },

    async listItems(kind: ReviewedKind, orgId: string, wsId: string, status?: ToolStatus): Promise<ToolView[]> {
      const { rows } = await db.withTenant(orgId, (tx) =>
        tx.query<{ server: string; name: string; definition: { description?: string } & Record<string, unknown>; status: ToolStatus; listed: boolean; first_seen_at: Date | string; reviewed_at: Date | string | null }>(
          `select s.name as server, t.name, t.definition, t.status, t.listed, t.first_seen_at, t.reviewed_at
             from ${TABLE[kind]} t join mcp_servers s on s.id = t.server_id
            where t.workspace_id = $1 and ($2::text is null or t.status = $2) order by s.name, t.name`,
          [wsId, status ?? null],
        ),
      );
      return rows.map((r) => ({
        server: r.server,
        name: r.name,
        qualifiedName: `${r.server}${NAMESPACE_SEPARATOR}${r.name}`,
        description: r.definition.description ?? null,
        definition: r.definition,
        status: r.status,
        listed: r.listed,
        firstSeenAt: iso(r.first_seen_at),
        reviewedAt: r.reviewed_at === null ? null : iso(r.reviewed_at),
      }));
    },

    /** An admin's review of one tool or prompt. Throws NOT_FOUND. */
    async reviewItem(kind: ReviewedKind, orgId: string, wsId: string, actorId: string, server: string, tool: string, status: Exclude<ToolStatus, 'pending'>, at: Date): Promise<void> {
      const row = await serverRow(orgId, wsId, server);
      const event = await audit.prepare({ tenantId: orgId, action: 'mcp.tool.reviewed', target: { type: `mcp_${kind}`, id: `${server}${NAMESPACE_SEPARATOR}${tool}` }, data: { workspace: wsId, status, kind } });
      const found = await db.withTenant(orgId, async (tx) => {
        const res = await tx.query(`update ${TABLE[kind]} set status = $3, reviewed_by = $4, reviewed_at = $5 where server_id = $1 and name = $2`, [row.id, tool, status, actorId, at.toISOString()]);
        if (res.rowCount !== 0) await audit.append(tx, event);
        return res.rowCount !== 0;
      });
      if (!found) throw new AppError('NOT_FOUND');
    },
  };
}
