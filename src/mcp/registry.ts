/**
 * The registry of a workspace's upstream MCP servers and their tools (GW-5), in the database
 * (the source of truth for every policy decision: read per request, so an approval, a denial or a
 * key's allowlist applies on every node at once). Servers: src/mcp/registry-servers.ts; tools
 * and reviews: registry-tools.ts; key allowlists and the catalog: registry-access.ts; types:
 * registry-model.ts.
 */
import type { McpRegistryDeps } from './registry-model.ts';
import { createAccessStore } from './registry-access.ts';
import { createServerStore } from './registry-servers.ts';
import { createToolStore } from './registry-tools.ts';

export { NAMESPACE_SEPARATOR, canonicalJson, definitionOf } from './registry-model.ts';
export type { CatalogTool, McpRegistryDeps, ResultPolicy, ServerInput, ServerView, ToolDefinition, ToolStatus, ToolView } from './registry-model.ts';

/** @example const registry = createMcpRegistry({ db, keyring, audit, maxServersPerWorkspace: 50 }) */
export function createMcpRegistry(deps: McpRegistryDeps) {
  const servers = createServerStore(deps);
  return { ...servers, ...createToolStore(deps, servers), ...createAccessStore(deps) };
}

export type McpRegistry = ReturnType<typeof createMcpRegistry>;
