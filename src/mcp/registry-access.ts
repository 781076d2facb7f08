/**
 * Who may use what of the MCP registry (GW-5): a key's own allowlist (it narrows the workspace's
 * approved tools and prompts and its opted-in resources further, never adds one) and the catalog, what one key may see and call now.
 */
import { AppError } from '../server/errors.ts';
import { NAMESPACE_SEPARATOR, RESOURCES_ENTRY, iso, type CatalogPrompt, type CatalogTool, type KeyCatalog, type McpRegistryDeps, type ResultPolicy } from './registry-model.ts';

interface ItemRow {
  server_id: string;
  server: string;
  name: string;
  definition: CatalogTool['definition'] | CatalogPrompt['definition'];
  definition_hash: string;
  result_policy: ResultPolicy;
  url: string;
  updated_at: Date | string;
  headers_sealed: string | null;
}

const itemOf = (r: ItemRow) => ({
  serverId: r.server_id,
  server: r.server,
  name: r.name,
  qualifiedName: `${r.server}${NAMESPACE_SEPARATOR}${r.name}`,
  definition: r.definition,
  definitionHash: r.definition_hash,
  resultPolicy: r.result_policy,
  url: r.url,
  version: iso(r.updated_at),
  headersSealed: r.headers_sealed,
});

/** @example const access = createAccessStore(deps) */
export function createAccessStore(deps: McpRegistryDeps) {
  const { db, audit } = deps;
  return {
    /** Sets (a list) or clears (null) a key's own tool allowlist. The key must be in the workspace (NOT_FOUND). */
    async setKeyTools(orgId: string, wsId: string, keyId: string, tools: readonly string[] | null): Promise<void> {
      const event = await audit.prepare({ tenantId: orgId, action: 'mcp.key_tools.set', target: { type: 'apikey', id: keyId }, data: { workspace: wsId, tools: tools === null ? null : tools.join(' ') } });
      const found = await db.withTenant(orgId, async (tx) => {
        const key = await tx.query('select id from api_keys where id = $1 and workspace_id = $2 for update', [keyId, wsId]);
        if (key.rowCount === 0) return false;
        if (tools === null) await tx.query('delete from mcp_key_tools where api_key_id = $1', [keyId]);
        else {
          await tx.query(
            `insert into mcp_key_tools (api_key_id, tenant_id, workspace_id, tools) values ($1, $2, $3, $4)
             on conflict (api_key_id) do update set tools = excluded.tools, updated_at = now()`,
            [keyId, orgId, wsId, [...tools]],
          );
        }
        await audit.append(tx, event);
        return true;
      });
      if (!found) throw new AppError('NOT_FOUND');
    },

    async keyTools(orgId: string, wsId: string, keyId: string): Promise<string[] | null> {
      const { rows } = await db.withTenant(orgId, (tx) => tx.query<{ tools: string[] }>('select tools from mcp_key_tools where api_key_id = $1 and workspace_id = $2', [keyId, wsId]));
      return rows[0]?.tools ?? null;
    },

    /**
     * What a key may see and use now, in one transaction: the tools and the prompts that are
     * approved, still listed, of an enabled server and on the key's own allowlist when it has
     * one; the enabled servers whose resources are opted in (and named `<server>:resources` on
     * the key's allowlist when it has one).
     */
    async catalog(orgId: string, wsId: string, keyId: string): Promise<KeyCatalog> {
      return db.withTenant(orgId, async (tx) => {
        const items = async (table: string) =>
          (
            await tx.query<ItemRow>(
              `select s.id as server_id, s.name as server, t.name, t.definition, t.definition_hash, s.result_policy, s.url, s.updated_at, s.headers_sealed
                 from ${table} t join mcp_servers s on s.id = t.server_id
                 left join mcp_key_tools k on k.api_key_id = $2 and k.workspace_id = t.workspace_id
                where t.workspace_id = $1 and s.enabled and t.status = 'approved' and t.listed
                  and (k.api_key_id is null or (s.name || '${NAMESPACE_SEPARATOR}' || t.name) = any(k.tools))
                order by s.name, t.name`,
              [wsId, keyId],
            )
          ).rows.map(itemOf);
        const tools = (await items('mcp_tools')) as CatalogTool[];
        const prompts = (await items('mcp_prompts')) as CatalogPrompt[];
        const { rows } = await tx.query<Omit<ItemRow, 'name' | 'definition' | 'definition_hash'>>(
          `select s.id as server_id, s.name as server, s.result_policy, s.url, s.updated_at, s.headers_sealed
             from mcp_servers s left join mcp_key_tools k on k.api_key_id = $2 and k.workspace_id = s.workspace_id
            where s.workspace_id = $1 and s.enabled and s.resources
              and (k.api_key_id is null or (s.name || '${RESOURCES_ENTRY}') = any(k.tools))
            order by s.name`,
          [wsId, keyId],
        );
        const resourceServers = rows.map((r) => ({ serverId: r.server_id, server: r.server, resultPolicy: r.result_policy, url: r.url, version: iso(r.updated_at), headersSealed: r.headers_sealed }));
        return { tools, prompts, resourceServers };
      });
    },
  };
}
