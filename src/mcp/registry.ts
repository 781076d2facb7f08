/**
 * The registry of a workspace's upstream MCP servers and their tools (GW-5), in the database
 * (the source of truth for every policy decision: read per request, so an approval, a denial or a
 * key's allowlist applies on every node at once). Servers: src/mcp/registry-servers.ts; tools
 * and reviews: registry-tools.ts; key allowlists and the catalog: registry-access.ts; types:
 * registry-model.ts.
 */
import type { Prompt, Tool } from '@modelcontextprotocol/sdk/types.js';
import { definitionOf, promptDefinitionOf, type McpRegistryDeps } from './registry-model.ts';
import { createAccessStore } from './registry-access.ts';
import { createServerStore } from './registry-servers.ts';
import { createToolStore } from './registry-tools.ts';

export { NAMESPACE_SEPARATOR, canonicalJson, definitionOf } from './registry-model.ts';
export type { CatalogPrompt, CatalogTool, KeyCatalog, McpRegistryDeps, ResourceServer, ReviewedKind, ResultPolicy, ServerInput, ServerView, ToolDefinition, ToolStatus, ToolView } from './registry-model.ts';

/** @example const registry = createMcpRegistry({ db, keyring, audit, maxServersPerWorkspace: 50 }) */
export function createMcpRegistry(deps: McpRegistryDeps) {
  const servers = createServerStore(deps);
  const items = createToolStore(deps, servers);
  return {
    ...servers,
    ...items,
    ...createAccessStore(deps),
    recordTools: (orgId: string, wsId: string, serverId: string, serverName: string, tools: readonly Tool[], at: Date) =>
      items.recordItems('tool', orgId, wsId, serverId, serverName, tools.map((t) => ({ name: t.name, definition: definitionOf(t) })), at),
    recordPrompts: (orgId: string, wsId: string, serverId: string, serverName: string, prompts: readonly Prompt[], at: Date) =>
      items.recordItems('prompt', orgId, wsId, serverId, serverName, prompts.map((p) => ({ name: p.name, definition: promptDefinitionOf(p) })), at),
  };
}

export type McpRegistry = ReturnType<typeof createMcpRegistry>;
