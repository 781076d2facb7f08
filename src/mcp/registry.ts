/**
 * The registry of a workspace's upstream MCP servers and their tools (GW-5), in the database
 * (the source of truth for every policy decision: read per request, so an approval, a denial or a
 * key's allowlist applies on every node at once).
 *
 * - Servers: URL and request headers (credentials), sealed with the org's data key and bound to
 *   the row; write-only (only header names are shown). A changed URL sends every tool of the
 *   server back to review.
 * - Tools: each listed tool with its definition and the definition's hash; new tools start
 *   `pending` (deny by default), a changed definition goes back to `pending`, an admin approves
 *   or denies. Tools the upstream stopped listing are kept, unlisted.
 * - A key's own tool allowlist narrows the workspace's approved tools further.
 *
 * size-exception: createMcpRegistry is one factory closure of small query functions (servers,
 * tools, reviews, key allowlists); split by resource is pending; no measured reason to keep it whole.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { AuditLog } from '../audit/index.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import { McpGatewayError } from './errors.ts';

const SEALED = { table: 'mcp_servers', column: 'headers_sealed' } as const;
/** Between a server's name and its tool's name in what clients see. */
export const NAMESPACE_SEPARATOR = '__';

export type ToolStatus = 'pending' | 'approved' | 'denied';
export type ResultPolicy = 'enforce' | 'monitor';

export interface ServerInput {
  url: string;
  headers?: Record<string, string> | undefined;
  enabled?: boolean | undefined;
  resultPolicy?: ResultPolicy | undefined;
}

export interface ServerView {
  name: string;
  url: string;
  headerNames: string[];
  enabled: boolean;
  resultPolicy: ResultPolicy;
  lastSyncedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ToolView {
  server: string;
  name: string;
  /** `<server>__<tool>`: the name MCP clients see. */
  qualifiedName: string;
  description: string | null;
  status: ToolStatus;
  listed: boolean;
  firstSeenAt: string;
  reviewedAt: string | null;
}

/** What a tool's definition holds (what clients are shown once it is approved). */
export interface ToolDefinition {
  title?: string;
  description?: string;
  inputSchema: Tool['inputSchema'];
  outputSchema?: Tool['outputSchema'];
  annotations?: Tool['annotations'];
}

/** An approved tool a key may call, with its server. */
export interface CatalogTool {
  serverId: string;
  server: string;
  name: string;
  qualifiedName: string;
  definition: ToolDefinition;
  definitionHash: string;
  resultPolicy: ResultPolicy;
  /** The server's connection data (headers still sealed), read with the tool. */
  url: string;
  version: string;
  headersSealed: string | null;
}

interface ServerRow {
  id: string;
  name: string;
  url: string;
  headers_sealed: string | null;
  header_names: string[];
  enabled: boolean;
  result_policy: ResultPolicy;
  last_synced_at: Date | string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const SERVER_COLUMNS = 'id, name, url, headers_sealed, header_names, enabled, result_policy, last_synced_at, created_at, updated_at';
const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();

const serverView = (r: ServerRow): ServerView => ({
  name: r.name,
  url: r.url,
  headerNames: r.header_names,
  enabled: r.enabled,
  resultPolicy: r.result_policy,
  lastSyncedAt: r.last_synced_at === null ? null : iso(r.last_synced_at),
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

/** JSON with object keys sorted: the text a definition's hash is taken over. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function definitionOf(tool: Tool): ToolDefinition {
  return {
    ...(tool.title !== undefined ? { title: tool.title } : {}),
    ...(tool.description !== undefined ? { description: tool.description } : {}),
    inputSchema: tool.inputSchema,
    ...(tool.outputSchema !== undefined ? { outputSchema: tool.outputSchema } : {}),
    ...(tool.annotations !== undefined ? { annotations: tool.annotations } : {}),
  };
}

const hashOf = (definition: ToolDefinition): string => createHash('sha256').update(canonicalJson(definition)).digest('hex');

export interface McpRegistryDeps {
  db: Db;
  keyring: Keyring;
  audit: AuditLog;
  maxServersPerWorkspace: number;
}

/** @example const registry = createMcpRegistry({ db, keyring, audit, maxServersPerWorkspace: 50 }) */
export function createMcpRegistry(deps: McpRegistryDeps) {
  const { db, keyring, audit } = deps;

  async function serverRow(orgId: string, wsId: string, name: string): Promise<ServerRow> {
    const { rows } = await db.withTenant(orgId, (tx) => tx.query<ServerRow>(`select ${SERVER_COLUMNS} from mcp_servers where workspace_id = $1 and name = $2`, [wsId, name]));
    const row = rows[0];
    if (!row) throw new AppError('NOT_FOUND');
    return row;
  }

  return {
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
        data: { workspace: wsId, name, url: input.url, headers: headerNames.join(' '), enabled: input.enabled ?? true, resultPolicy: input.resultPolicy ?? 'enforce' },
      });
      const row = await db.withTenant(orgId, async (tx) => {
        // One change at a time per workspace, so the count below stays true.
        const ws = await tx.query('select id from workspaces where id = $1 for update', [wsId]);
        if (ws.rowCount === 0) throw new AppError('NOT_FOUND');
        const { rows: count } = await tx.query<{ n: number }>('select count(*)::int as n from mcp_servers where workspace_id = $1 and name <> $2', [wsId, name]);
        if ((count[0]?.n ?? 0) >= deps.maxServersPerWorkspace) throw new McpGatewayError('MCP_LIMIT_REACHED', `A workspace may have at most ${deps.maxServersPerWorkspace} MCP servers.`);
        const { rows } = await tx.query<ServerRow & { old_url: string | null }>(
          `insert into mcp_servers (id, tenant_id, workspace_id, name, url, headers_sealed, header_names, enabled, result_policy, created_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           on conflict (tenant_id, workspace_id, name) do update
             set url = excluded.url, headers_sealed = excluded.headers_sealed, header_names = excluded.header_names,
                 enabled = excluded.enabled, result_policy = excluded.result_policy, updated_at = clock_timestamp()
             where mcp_servers.id = excluded.id
           returning ${SERVER_COLUMNS}`,
          [id, orgId, wsId, name, input.url, sealed, headerNames, input.enabled ?? true, input.resultPolicy ?? 'enforce', actorId],
        );
        const row = rows[0];
        // Replaced concurrently with another id: this seal is bound to the wrong row; the caller retries.
        if (!row) throw new McpGatewayError('MCP_SERVER_CHANGED');
        // Another upstream behind the same name: what was approved there is not approved here.
        if (existing.rows[0] && existing.rows[0].url !== input.url) await tx.query("update mcp_tools set status = 'pending', reviewed_by = null, reviewed_at = null where server_id = $1", [id]);
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
      return { id: row.id, url: row.url, version: iso(row.updated_at), headers: await this.openHeaders(orgId, row.id, row.headers_sealed) };
    },

    async openHeaders(orgId: string, serverId: string, sealed: string | null): Promise<Record<string, string>> {
      if (sealed === null) return {};
      const text = (await keyring.open({ tenantId: orgId }, { ...SEALED, rowId: serverId }, sealed)).toString('utf8');
      return JSON.parse(text) as Record<string, string>;
    },

    /**
     * Records what the upstream lists: new tools `pending`, changed definitions back to `pending`,
     * tools no longer listed marked unlisted. One transaction; audited with the counts.
     */
    async recordTools(orgId: string, wsId: string, serverId: string, serverName: string, tools: readonly Tool[], at: Date): Promise<{ added: number; changed: number; unlisted: number }> {
      const defs = tools.map((t) => ({ name: t.name, definition: definitionOf(t) })).map((t) => ({ ...t, hash: hashOf(t.definition) }));
      const names = defs.map((d) => d.name);
      if (new Set(names).size !== names.length || names.some((n) => n.length < 1 || n.length > 128)) throw new McpGatewayError('MCP_UPSTREAM_ERROR', 'The MCP server lists duplicate or malformed tool names.');
      // Prepared before the transaction (it reaches the database); the counts are added at append.
      const event = await audit.prepare({ tenantId: orgId, action: 'mcp.tools.synced', target: { type: 'mcp_server', id: serverId }, data: { workspace: wsId, server: serverName } });
      return db.withTenant(orgId, async (tx) => {
        const { rows: before } = await tx.query<{ name: string; definition_hash: string; listed: boolean }>('select name, definition_hash, listed from mcp_tools where server_id = $1 for update', [serverId]);
        const known = new Map(before.map((r) => [r.name, r]));
        let added = 0;
        let changed = 0;
        for (const d of defs) {
          const old = known.get(d.name);
          if (!old) added++;
          else if (old.definition_hash !== d.hash) changed++;
          await tx.query(
            `insert into mcp_tools (tenant_id, workspace_id, server_id, name, definition, definition_hash, first_seen_at)
             values ($1, $2, $3, $4, $5, $6, $7)
             on conflict (server_id, name) do update
               set definition = excluded.definition, definition_hash = excluded.definition_hash, listed = true,
                   status = case when mcp_tools.definition_hash = excluded.definition_hash then mcp_tools.status else 'pending' end,
                   reviewed_by = case when mcp_tools.definition_hash = excluded.definition_hash then mcp_tools.reviewed_by end,
                   reviewed_at = case when mcp_tools.definition_hash = excluded.definition_hash then mcp_tools.reviewed_at end`,
            [orgId, wsId, serverId, d.name, JSON.stringify(d.definition), d.hash, at.toISOString()],
          );
        }
        const { rowCount: unlisted } = await tx.query('update mcp_tools set listed = false where server_id = $1 and listed and not (name = any($2::text[]))', [serverId, names]);
        await tx.query('update mcp_servers set last_synced_at = $2 where id = $1', [serverId, at.toISOString()]);
        const counts = { added, changed, unlisted: unlisted ?? 0 };
        if (added + changed + counts.unlisted > 0) {
          await audit.append(tx, event, counts);
        }
        return counts;
      });
    },

    async listTools(orgId: string, wsId: string, status?: ToolStatus): Promise<ToolView[]> {
      const { rows } = await db.withTenant(orgId, (tx) =>
        tx.query<{ server: string; name: string; definition: ToolDefinition; status: ToolStatus; listed: boolean; first_seen_at: Date | string; reviewed_at: Date | string | null }>(
          `select s.name as server, t.name, t.definition, t.status, t.listed, t.first_seen_at, t.reviewed_at
             from mcp_tools t join mcp_servers s on s.id = t.server_id
            where t.workspace_id = $1 and ($2::text is null or t.status = $2) order by s.name, t.name`,
          [wsId, status ?? null],
        ),
      );
      return rows.map((r) => ({
        server: r.server,
        name: r.name,
        qualifiedName: `${r.server}${NAMESPACE_SEPARATOR}${r.name}`,
        description: r.definition.description ?? null,
        status: r.status,
        listed: r.listed,
        firstSeenAt: iso(r.first_seen_at),
        reviewedAt: r.reviewed_at === null ? null : iso(r.reviewed_at),
      }));
    },

    /** An admin's review of one tool. Throws NOT_FOUND. */
    async reviewTool(orgId: string, wsId: string, actorId: string, server: string, tool: string, status: Exclude<ToolStatus, 'pending'>, at: Date): Promise<void> {
      const row = await serverRow(orgId, wsId, server);
      const event = await audit.prepare({ tenantId: orgId, action: 'mcp.tool.reviewed', target: { type: 'mcp_tool', id: `${server}${NAMESPACE_SEPARATOR}${tool}` }, data: { workspace: wsId, status } });
      const found = await db.withTenant(orgId, async (tx) => {
        const res = await tx.query('update mcp_tools set status = $3, reviewed_by = $4, reviewed_at = $5 where server_id = $1 and name = $2', [row.id, tool, status, actorId, at.toISOString()]);
        if (res.rowCount !== 0) await audit.append(tx, event);
        return res.rowCount !== 0;
      });
      if (!found) throw new AppError('NOT_FOUND');
    },

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
     * The tools a key may see and call now: approved, still listed, of an enabled server, and on
     * the key's own allowlist when it has one. One read, per request.
     */
    async catalog(orgId: string, wsId: string, keyId: string): Promise<CatalogTool[]> {
      const { rows } = await db.withTenant(orgId, (tx) =>
        tx.query<{ server_id: string; server: string; name: string; definition: ToolDefinition; definition_hash: string; result_policy: ResultPolicy; url: string; updated_at: Date | string; headers_sealed: string | null }>(
          `select s.id as server_id, s.name as server, t.name, t.definition, t.definition_hash, s.result_policy, s.url, s.updated_at, s.headers_sealed
             from mcp_tools t join mcp_servers s on s.id = t.server_id
             left join mcp_key_tools k on k.api_key_id = $2 and k.workspace_id = t.workspace_id
            where t.workspace_id = $1 and s.enabled and t.status = 'approved' and t.listed
              and (k.api_key_id is null or (s.name || '${NAMESPACE_SEPARATOR}' || t.name) = any(k.tools))
            order by s.name, t.name`,
          [wsId, keyId],
        ),
      );
      return rows.map((r) => ({
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
      }));
    },
  };
}

export type McpRegistry = ReturnType<typeof createMcpRegistry>;
