/**
 * The registry of a workspace's upstream MCP servers and their tools (GW-5), in the database
 * (the source of truth for every policy decision: read per request, so an approval, a denial or a
 * key's allowlist applies on every node at once). Servers: src/mcp/registry-servers.ts; tools
 * and reviews: registry-tools.ts; key allowlists and the catalog: registry-access.ts; types:
 * registry-model.ts.
 */
import type { Prompt, Tool } from '@modelcontextprotocol/sdk/types.js';
import { definitionOf, promptDefinitionOf, type McpRegistryDeps, type ReviewedKind, type ToolStatus } from './registry-model.ts';
import { createAccessStore } from './registry-access.ts';
import { createServerStore } from './registry-servers.ts';
import { createToolStore } from './registry-tools.ts';

export { NAMESPACE_SEPARATOR, canonicalJson, definitionOf } from './registry-model.ts';
export type { CatalogPrompt, CatalogTool, KeyCatalog, McpRegistryDeps, ResourceServer, ReviewedKind, ResultPolicy, ServerInput, ServerView, ToolDefinition, ToolStatus, ToolView } from './registry-model.ts';

/** @example const registry = createMcpRegistry({ db, keyring, audit, maxServersPerWorkspace: 50 }) */
export function createMcpRegistry(deps: McpRegistryDeps, onChange: (orgId: string, wsId: string) => Promise<void> = async () => undefined) {
  const servers = createServerStore(deps);
  const items = createToolStore(deps, servers);
  const access = createAccessStore(deps);
  /** Runs a committed change, then announces it (catalog caches drop the workspace's entries). */
  const changing =
    <A extends [string, string, ...unknown[]], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const result = await fn(...args);
      await onChange(args[0], args[1]);
      return result;
    };
  const record = (kind: ReviewedKind, orgId: string, wsId: string, serverId: string, serverName: string, list: readonly { name: string; definition: object }[], at: Date) =>
    changing(items.recordItems.bind(null, kind))(orgId, wsId, serverId, serverName, list, at);
  return {
    ...servers,
    ...items,
    ...access,
    setServer: changing(servers.setServer),
    removeServer: changing(servers.removeServer),
    reviewItem: (kind: ReviewedKind, orgId: string, wsId: string, actorId: string, server: string, name: string, status: Exclude<ToolStatus, 'pending'>, at: Date) =>
      changing(items.reviewItem.bind(null, kind))(orgId, wsId, actorId, server, name, status, at),
    setKeyTools: changing(access.setKeyTools),
    recordItems: record,
    recordTools: (orgId: string, wsId: string, serverId: string, serverName: string, tools: readonly Tool[], at: Date) =>
      record('tool', orgId, wsId, serverId, serverName, tools.map((t) => ({ name: t.name, definition: definitionOf(t) })), at),
    recordPrompts: (orgId: string, wsId: string, serverId: string, serverName: string, prompts: readonly Prompt[], at: Date) =>
      record('prompt', orgId, wsId, serverId, serverName, prompts.map((p) => ({ name: p.name, definition: promptDefinitionOf(p) })), at),
  };
}

export type McpRegistry = ReturnType<typeof createMcpRegistry>;
